// Incremental Server-Sent Events parser (WHATWG rules): events may be split anywhere across
// network chunks, including inside a multi-byte character or between \r and \n.
import { StringDecoder } from 'node:string_decoder';

export interface SSEEvent {
  event: string | undefined;
  data: string;
  id: string | undefined;
}

export class SSEParser {
  // StringDecoder: same replacement of bad bytes as TextDecoder, a fraction of the cost per chunk.
  private decoder = new StringDecoder('utf8');
  private atStart = true;
  private buf = '';
  private data: string[] = [];
  private event: string | undefined;
  private id: string | undefined;
  private sawCR = false;

  /** Feed bytes; returns the events completed by them. */
  feed(chunk: Uint8Array | string): SSEEvent[] {
    let text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    if (text.length === 0) return [];
    if (this.atStart) {
      this.atStart = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte-order mark is ignored
    }
    if (this.sawCR && text.startsWith('\n')) text = text.slice(1);
    this.sawCR = false;
    const buf = this.buf ? this.buf + text : text;
    const out: SSEEvent[] = [];
    let start = 0;
    // next \n and next \r at or after start (-1: none); indexOf is far cheaper than a char loop
    let lf = buf.indexOf('\n');
    let cr = buf.indexOf('\r');
    while (lf !== -1 || cr !== -1) {
      const nl = cr === -1 || (lf !== -1 && lf < cr) ? lf : cr;
      const line = buf.slice(start, nl);
      if (nl === cr) {
        if (nl + 1 < buf.length) {
          start = buf.charCodeAt(nl + 1) === 10 ? nl + 2 : nl + 1;
        } else {
          this.sawCR = true;
          start = nl + 1;
        }
      } else start = nl + 1;
      if (lf !== -1 && lf < start) lf = buf.indexOf('\n', start);
      if (cr !== -1 && cr < start) cr = buf.indexOf('\r', start);
      const ev = this.line(line);
      if (ev) out.push(ev);
    }
    this.buf = start === 0 ? buf : buf.slice(start);
    return out;
  }

  /** End of stream: an unterminated final event is dropped, as the spec requires. */
  end(): SSEEvent[] {
    this.buf += this.decoder.end();
    return [];
  }

  private line(line: string): SSEEvent | undefined {
    if (line === '') {
      if (this.data.length === 0) {
        // A block without data is not dispatched (WHATWG), whatever other fields it had.
        this.event = undefined;
        return undefined;
      }
      const ev = { event: this.event, data: this.data.join('\n'), id: this.id };
      this.data = [];
      this.event = undefined;
      return ev;
    }
    if (line.charCodeAt(0) === 58) return undefined; // ':' comment
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id') this.id = value;
    return undefined;
  }
}

export function formatSSE(ev: SSEEvent): string {
  if (ev.event === undefined && ev.id === undefined && ev.data.indexOf('\n') === -1) return `data: ${ev.data}\n\n`; // the usual case
  let s = '';
  if (ev.event !== undefined) s += `event: ${ev.event}\n`;
  if (ev.id !== undefined) s += `id: ${ev.id}\n`;
  for (const line of ev.data.split('\n')) s += `data: ${line}\n`;
  return s + '\n';
}
