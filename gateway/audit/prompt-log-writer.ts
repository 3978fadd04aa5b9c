// The prompt log's writer, a part of the recorders' writer thread (gateway/store/recorder.ts): rows
// (text already sealed on the main thread) are written in their own transactions on the thread's
// connection, so a database held busy never holds up the event loop that serves requests, and a
// failure of this part costs no other part its rows. Rows it could not write are kept and retried;
// while failing it reports each state change, which is what settings.audit.fail_closed acts on.
import type { PartContext, PartWriter } from '../store/recorder-protocol.js';
import type { PromptLogRow } from './prompt-log.js';

export type ToPromptLogWriter = { type: 'rows'; rows: PromptLogRow[] } | { type: 'probe' } | { type: 'close' };
export type FromPromptLogWriter = { type: 'written'; count: number } | { type: 'failed'; error: string; pending: number } | { type: 'closed'; unwritten: number };

export interface PromptLogWriterInit {
  retryMs: number;
}

const INSERT = `INSERT OR REPLACE INTO prompt_log (request_id, ts, expires_at, mode, team, key_name, user, model, endpoint, status, meta, prompt, response, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

export function promptLogWriter({ db, send: post }: PartContext, init: unknown): PartWriter {
  const { retryMs } = init as PromptLogWriterInit;
  const send = (m: FromPromptLogWriter) => post(m);
  let ins: import("better-sqlite3").Statement<unknown[]> | undefined;
  let queue: PromptLogRow[] = [];
  let failing = false;
  let timer: NodeJS.Timeout | undefined;

  const insertAll = (rows: PromptLogRow[]) => {
    ins ??= db.prepare(INSERT);
    for (const r of rows) ins.run(r.request_id, r.ts, r.expires_at, r.mode, r.team, r.key_name, r.user, r.model, r.endpoint, r.status, JSON.stringify(r.meta), r.prompt, r.response, r.sha256);
  };
  const insert = (rows: PromptLogRow[]) => db.transaction(() => insertAll(rows)).immediate();
  // would a row be accepted? (one inserted and rolled back: a refusing trigger or a full disk shows)
  const PROBE: PromptLogRow = { request_id: '', ts: 0, expires_at: 0, mode: 'metadata', team: null, key_name: null, user: null, model: null, endpoint: null, status: 0, meta: {}, prompt: null, response: null, sha256: '' };
  const probe = () => {
    const no = new Error('probe');
    try {
      db.transaction(() => {
        insertAll([PROBE]);
        throw no;
      }).immediate();
    } catch (e) {
      if (e !== no) throw e;
    }
  };

  const attempt = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const batch = queue;
    try {
      if (batch.length) insert(batch);
      else if (failing) probe();
      else return;
      queue = queue.slice(batch.length);
      failing = false;
      send({ type: 'written', count: batch.length });
    } catch (e) {
      failing = true;
      send({ type: 'failed', error: (e as Error).message, pending: queue.length });
      timer = setTimeout(attempt, retryMs);
    }
  };

  return (raw) => {
    const m = raw as ToPromptLogWriter;
    if (m.type === 'rows') {
      queue = queue.concat(m.rows);
      if (!failing) attempt();
    } else if (m.type === 'probe') {
      failing = true;
      attempt();
    } else {
      attempt();
      if (timer) clearTimeout(timer);
      send({ type: 'closed', unwritten: queue.length });
    }
  };
}
