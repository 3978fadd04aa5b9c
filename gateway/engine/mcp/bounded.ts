// The most an upstream MCP server may send in one message (settings: mcp_servers[].max_response_bytes).
// The SDK's client transports buffer each message whole before parsing it (a JSON body, an SSE
// event, a stdio line), so a server that sends too much, or never ends a message, would grow the
// gateway's memory without bound. Here the bytes of the message being received are counted: over
// the limit, the message is cut off, the connection closed (a stdio process is restarted, an HTTP
// session reopened on the next call) and the call that waited for it gets an error naming the limit.
import type { ChildProcess } from 'node:child_process';
import type { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';

export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

export class ResponseTooLarge extends Error {
  constructor(
    readonly server: string,
    readonly limit: number,
  ) {
    super(`MCP server "${server}" sent a message larger than ${limit} bytes (its max_response_bytes); it was cut off and the connection closed`);
  }
}

/** Counts the bytes of one message: the whole body, or (SSE, stdio) the bytes since the last
 * message boundary (a blank line, a newline). */
class Meter {
  private n = 0;
  private last = -1;
  constructor(
    private readonly limit: number,
    private readonly boundary: 'none' | 'sse' | 'line',
  ) {}
  /** false once over the limit */
  add(chunk: Uint8Array): boolean {
    if (this.boundary === 'none') return (this.n += chunk.length) <= this.limit;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === 13) continue; // CRLF counts as LF
      if (b === 10 && (this.boundary === 'line' || this.last === 10)) this.n = 0;
      else this.n++;
      this.last = b;
      if (this.n > this.limit) return false;
    }
    return true;
  }
}

/** fetch for the HTTP and SSE transports, with each response's messages metered. */
export function boundedFetch(limit: number, onOver: () => ResponseTooLarge, base: FetchLike = fetch): FetchLike {
  return async (url, init) => {
    const res = await base(url, init);
    if (!res.body) return res;
    const meter = new Meter(limit, (res.headers.get('content-type') ?? '').includes('text/event-stream') ? 'sse' : 'none');
    const body = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          if (meter.add(chunk)) controller.enqueue(chunk);
          else controller.error(onOver());
        },
      }),
    );
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

/** Meter a stdio server's lines (call once its process is started). Over the limit, nothing more
 * of its output reaches the transport's line buffer (emptied), so the message is never parsed. */
export function meterStdout(transport: StdioClientTransport, limit: number, onOver: () => void): void {
  const t = transport as unknown as { _process?: ChildProcess; _readBuffer?: { append(chunk: Buffer): void; clear(): void } };
  const meter = new Meter(limit, 'line');
  let over = false;
  // before the transport's own listener, which would add this chunk to its buffer
  t._process?.stdout?.prependListener('data', (chunk: Buffer) => {
    if (over || meter.add(chunk)) return;
    over = true;
    if (t._readBuffer) {
      t._readBuffer.clear();
      t._readBuffer.append = () => undefined;
    }
    onOver();
  });
}
