// Calls over one shared upstream connection (a stdio server not marked `stateful` serves every
// agent session over one process). A server's request during a call (sampling/createMessage,
// elicitation/create) carries nothing that says which call it belongs to, so it can only be
// relayed to the right agent when one call that could use it is in flight: a call from a session
// whose agent answers sampling or elicitation runs alone; calls from other sessions (whose agents
// could not answer such a request anyway) run together. First come, first served: a waiting
// exclusive call is not overtaken by later shared ones.
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';

interface Waiter {
  readonly exclusive: boolean;
  go(): void;
}

export class CallGate {
  private running = 0;
  private exclusive = false;
  private readonly queue: Waiter[] = [];

  /** Wait for a turn, no longer than waitMs (then a timeout error) or until signal aborts; the
   * function returned ends the turn. */
  enter(exclusive: boolean, signal: AbortSignal, waitMs: number, server: string): Promise<() => void> {
    return new Promise((resolve, reject) => {
      const leave = (w: Waiter, e: Error) => {
        const i = this.queue.indexOf(w);
        if (i < 0) return;
        this.queue.splice(i, 1);
        signal.removeEventListener('abort', onAbort);
        clearTimeout(timer);
        reject(e);
        this.pump();
      };
      const w: Waiter = {
        exclusive,
        go: () => {
          signal.removeEventListener('abort', onAbort);
          clearTimeout(timer);
          let done = false;
          resolve(() => {
            if (done) return;
            done = true;
            this.running--;
            if (w.exclusive) this.exclusive = false;
            this.pump();
          });
        },
      };
      const onAbort = () => leave(w, new Error('cancelled'));
      if (signal.aborted) return reject(new Error('cancelled'));
      signal.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => leave(w, new McpError(ErrorCode.RequestTimeout, `waited ${waitMs} ms for calls to MCP server "${server}" that may ask their agent for sampling or elicitation`)), waitMs);
      this.queue.push(w);
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length && !this.exclusive) {
      const head = this.queue[0]!;
      if (head.exclusive && this.running > 0) return;
      this.queue.shift();
      this.running++;
      if (head.exclusive) this.exclusive = true;
      head.go();
    }
  }
}
