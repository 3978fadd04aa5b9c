// Messages between the recorders (main thread) and their writer thread (recorder-worker.ts).

/** the recorders that share the writer thread */
export type PartName = 'ledger' | 'audit' | 'spans' | 'prompt-log';

export type ToRecorder =
  /** create the part's writer (again, after a restart) */
  | { part: PartName; type: 'init'; init: unknown }
  /** a message for the part's writer */
  | { part: PartName; type: 'msg'; msg: unknown }
  /** the part is done (its writer said it closed); the thread ends with the last part */
  | { part: PartName; type: 'detach' };

export interface FromRecorder {
  part: PartName;
  msg: unknown;
}

/** What a part's writer gets: the thread's connection and a way to answer its main-thread side. */
export interface PartContext {
  db: import('better-sqlite3').Database;
  send: (m: unknown) => void;
  dataDir: string | undefined;
  /** Call between rows: once this thread has run a slice without a break, it sleeps a moment so
   * that the event loop serving requests gets the core when both share one (recorder-worker.ts).
   * Absent outside the writer thread. */
  pace?: () => void;
}

/** A part's writer in the thread: handles its messages. */
export type PartWriter = (m: unknown) => void;
