// Incremental Server-Sent Events parser (WHATWG rules): events may be split anywhere across
// network chunks, including inside a multi-byte character or between \r and \n.
export interface SSEEvent {
  event: string | undefined;
  data: string;
  id: string | undefined;
}

export class SSEParser {
  private decoder = new TextDecoder('utf-8');
  private buf = '';
  private data: string[] = [];
  private event: string | undefined;
  private id: string | undefined;
  private sawCR = false;

  /** Feed bytes; returns the events completed by them. */
  feed(chunk: Uint8Array | string): SSEEvent[] {
    let text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    if (this.sawCR && text.startsWith('\n')) text = text.slice(1);
    this.sawCR = false;
    this.buf += text;
    const out: SSEEvent[] = [];
    let start = 0;
    for (;;) {
      let nl = -1;
      for (let i = start; i < this.buf.length; i++) {
        const c = this.buf.charCodeAt(i);
        if (c === 10 || c === 13) {
          nl = i;
          break;
        }
      }
      if (nl === -1) break;
      const line = this.buf.slice(start, nl);
      if (this.buf.charCodeAt(nl) === 13) {
        if (nl + 1 < this.buf.length) {
          start = this.buf.charCodeAt(nl + 1) === 10 ? nl + 2 : nl + 1;
        } else {
          this.sawCR = true;
          start = nl + 1;
        }
      } else start = nl + 1;
      const ev = this.line(line);
      if (ev) out.push(ev);
    }
    this.buf = this.buf.slice(start);
    return out;
  }

  /** End of stream: an unterminated final event is dropped, as the spec requires. */
  end(): SSEEvent[] {
    this.buf += this.decoder.decode();
    return [];
  }

  private line(line: string): SSEEvent | undefined {
    if (line === '') {
      if (this.data.length === 0 && this.event === undefined) return undefined;
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
  let s = '';
  if (ev.event !== undefined) s += `event: ${ev.event}\n`;
  if (ev.id !== undefined) s += `id: ${ev.id}\n`;
  for (const line of ev.data.split('\n')) s += `data: ${line}\n`;
  return s + '\n';
}
