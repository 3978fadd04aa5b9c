// Stopping the gateway when the user logs off or Windows shuts down, also while no admin window is
// open ("keep serving when the window closes"): Windows tells only windows (WM_QUERYENDSESSION /
// WM_ENDSESSION, Electron's 'query-session-end' and 'session-end' on a BaseWindow), so the shell
// keeps a hidden sentinel window on Windows for them. Plain Node; main.ts wires it to Electron.
//
// query-session-end: start the graceful stop (the stop message goes out at once) and delay the
// end of the session while it runs (preventDefault; Windows shows Airlock as busy, the user can
// still end the session at once). session-end (the session ends, nothing can hold it): start the
// stop if it has not started. Either way, the shell quits once the gateway has stopped.

/** Does this platform need a hidden window to hear about the session ending? */
export const needsSessionSentinel = (platform: NodeJS.Platform): boolean => platform === 'win32';

export interface SessionEndEvent {
  reasons?: readonly string[];
  preventDefault(): void;
}

export interface SessionEndDeps {
  /** the gateway's graceful stop (the stop message, the grace, then kill) */
  stopGateway: () => Promise<void>;
  /** quit the shell */
  quit: () => void;
  log: (line: string) => void;
}

export class SessionEndHandler {
  private stopping: Promise<void> | undefined;
  private stopped = false;
  constructor(private readonly d: SessionEndDeps) {}

  /** Windows asks whether the session may end. */
  onQuerySessionEnd(e: SessionEndEvent): void {
    this.start('query-session-end', e.reasons);
    if (!this.stopped) e.preventDefault();
  }

  /** The session ends now. */
  onSessionEnd(e: SessionEndEvent): void {
    this.start('session-end', e.reasons);
  }

  /** true once the gateway has stopped (the shell quits then). */
  get done(): boolean {
    return this.stopped;
  }

  private start(what: string, reasons: readonly string[] | undefined): void {
    if (this.stopping) return;
    this.d.log(`Windows ${what} (${reasons?.length ? reasons.join(', ') : 'no reason given'}): stopping the gateway`);
    this.stopping = this.d
      .stopGateway()
      .catch((err: Error) => this.d.log(`stopping the gateway for the session end failed: ${err.message}`))
      .then(() => {
        this.stopped = true;
        this.d.quit();
      });
  }
}

/** What to do when the admin window closed. */
export function afterWindowClosed(o: { keepServing: boolean; quitting: boolean }): 'quit' | 'keep-serving' | 'nothing' {
  if (o.quitting) return 'nothing';
  return o.keepServing ? 'keep-serving' : 'quit';
}
