// Incremental Server-Sent Events parser (WHATWG rules): events may be split anywhere across
// network chunks, including inside a multi-byte character or between \r and \n.
//
// Linear in the input however it is chunked: lines are found in the raw bytes (CR and LF never
// occur inside a UTF-8 sequence), each byte is searched once, an unfinished line is appended to
// one growing byte buffer (amortised copies, never a re-scan of what was already searched), and
// each line is decoded once, when it is complete. With `maxEventBytes`, a line or an event's data
// larger than that makes feed() throw SSETooLargeError before it is buffered.

export interface SSEEvent {
  event: string | undefined;
  data: string;
  id: string | undefined;
  /** `data` as JSON, when the reader already parsed it (the stream inspector, for its own
   * decisions), so that an output guard does not parse it again. Read-only: whoever receives it
   * must not change it; an event made from other data never carries it. */
  parsed?: object;
}

export interface SSEParserOptions {
  /** Largest line, and largest data of one event (UTF-8 bytes); larger throws SSETooLargeError. Default: no limit. */
  maxEventBytes?: number;
}

/** A line, or the data of an event, is larger than the parser's maxEventBytes. */
export class SSETooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`a streamed event is larger than max_event_bytes (${limit} bytes)`);
    this.name = 'SSETooLargeError';
  }
}

const LF = 10;
const CR = 13;
const COLON = 58;
const SPACE = 32;
const EMPTY = Buffer.alloc(0);
/** An unfinished-line buffer grown beyond this is let go once its line is complete. */
const KEEP_BYTES = 64 * 1024;

export class SSEParser {
  private readonly max: number;
  /** the unfinished line: pend[0, pendLen) */
  private pend: Buffer = EMPTY;
  private pendLen = 0;
  private atStart = true;
  private sawCR = false;
  /** a high surrogate ending a string chunk, completed by the next one */
  private held = '';
  private data: string[] = [];
  private dataBytes = 0;
  private event: string | undefined;
  private id: string | undefined;
  private work = 0;

  constructor(opts: SSEParserOptions = {}) {
    this.max = opts.maxEventBytes ?? Infinity;
  }

  /**
   * Bytes the parser has examined so far: searched for line ends, copied into the unfinished-line
   * buffer or decoded. (Kept to prove the parser linear: it stays a small multiple of the input.)
   */
  get bytesExamined(): number {
    return this.work;
  }

  /** Feed bytes; returns the events completed by them. Throws SSETooLargeError past maxEventBytes. */
  feed(chunk: Uint8Array | string): SSEEvent[] {
    const buf =
      typeof chunk === 'string' ? this.encode(chunk)
      : Buffer.isBuffer(chunk) ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const len = buf.length;
    if (len === 0) return [];
    let start = 0;
    if (this.sawCR) {
      this.sawCR = false;
      if (buf[0] === LF) start = 1; // the \n of a \r\n split across chunks
    }
    const out: SSEEvent[] = [];
    // next \n and next \r at or after start (-1: none); each is searched for once per byte
    let lf = this.search(buf, LF, start);
    let cr = this.search(buf, CR, start);
    while (lf !== -1 || cr !== -1) {
      const nl = cr === -1 || (lf !== -1 && lf < cr) ? lf : cr;
      let ev: SSEEvent | undefined;
      if (this.pendLen === 0) ev = this.line(buf, start, nl);
      else {
        this.append(buf, start, nl);
        const n = this.pendLen;
        this.pendLen = 0;
        ev = this.line(this.pend, 0, n);
        if (this.pend.length > KEEP_BYTES) this.pend = EMPTY;
      }
      if (ev) out.push(ev);
      if (nl === cr) {
        if (nl + 1 < len) start = buf[nl + 1] === LF ? nl + 2 : nl + 1;
        else {
          this.sawCR = true;
          start = nl + 1;
        }
      } else start = nl + 1;
      if (lf !== -1 && lf < start) lf = this.search(buf, LF, start);
      if (cr !== -1 && cr < start) cr = this.search(buf, CR, start);
    }
    if (start < len) this.append(buf, start, len);
    return out;
  }

  /** End of stream: an unterminated final event is dropped, as the spec requires. */
  end(): SSEEvent[] {
    this.pend = EMPTY;
    this.pendLen = 0;
    this.held = '';
    this.data = [];
    this.dataBytes = 0;
    return [];
  }

  private search(buf: Buffer, byte: number, from: number): number {
    const at = buf.indexOf(byte, from);
    this.work += (at === -1 ? buf.length : at + 1) - from;
    return at;
  }

  /** Add buf[s, e) to the unfinished line. */
  private append(buf: Buffer, s: number, e: number): void {
    const need = this.pendLen + (e - s);
    if (need > this.max) throw new SSETooLargeError(this.max);
    if (need > this.pend.length) {
      const next = Buffer.allocUnsafe(Math.min(Math.max(need, this.pend.length * 2, 256), this.max));
      this.pend.copy(next, 0, 0, this.pendLen);
      this.work += this.pendLen;
      this.pend = next;
    }
    buf.copy(this.pend, this.pendLen, s, e);
    this.work += e - s;
    this.pendLen = need;
  }

  private decode(buf: Buffer, s: number, e: number): string {
    this.work += e - s;
    return buf.toString('utf8', s, e);
  }

  /** One complete line, buf[s, e) without its line end. */
  private line(buf: Buffer, s: number, e: number): SSEEvent | undefined {
    if (this.atStart) {
      this.atStart = false;
      if (e - s >= 3 && buf[s] === 0xef && buf[s + 1] === 0xbb && buf[s + 2] === 0xbf) s += 3; // a byte-order mark is ignored
    }
    const n = e - s;
    if (n > this.max) throw new SSETooLargeError(this.max);
    if (n === 0) {
      if (this.data.length === 0) {
        // A block without data is not dispatched (WHATWG), whatever other fields it had.
        this.event = undefined;
        return undefined;
      }
      const ev = { event: this.event, data: this.data.length === 1 ? this.data[0]! : this.data.join('\n'), id: this.id };
      this.data = [];
      this.dataBytes = 0;
      this.event = undefined;
      return ev;
    }
    const c0 = buf[s];
    if (c0 === COLON) return undefined; // comment
    this.work += Math.min(n, 6);
    // "data" or "data:…", recognised in the bytes: only the value is decoded
    if (n >= 4 && c0 === 0x64 && buf[s + 1] === 0x61 && buf[s + 2] === 0x74 && buf[s + 3] === 0x61 && (n === 4 || buf[s + 4] === COLON)) {
      let v = n === 4 ? e : s + 5;
      if (v < e && buf[v] === SPACE) v++;
      this.dataBytes += e - v + (this.data.length > 0 ? 1 : 0);
      if (this.dataBytes > this.max) throw new SSETooLargeError(this.max);
      this.data.push(v === e ? '' : this.decode(buf, v, e));
      return undefined;
    }
    const line = this.decode(buf, s, e);
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === SPACE) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'id') this.id = value;
    return undefined;
  }

  /** A string chunk as UTF-8; a surrogate pair split across string chunks is kept whole. */
  private encode(s: string): Buffer {
    if (this.held) {
      s = this.held + s;
      this.held = '';
    }
    const last = s.charCodeAt(s.length - 1);
    if (last >= 0xd800 && last <= 0xdbff) {
      this.held = s.slice(-1);
      s = s.slice(0, -1);
    }
    return Buffer.from(s, 'utf8');
  }
}

export function formatSSE(ev: SSEEvent): string {
  if (ev.id === undefined && ev.data.indexOf('\n') === -1) return ev.event === undefined ? `data: ${ev.data}\n\n` : `event: ${ev.event}\ndata: ${ev.data}\n\n`; // the usual cases
  let s = '';
  if (ev.event !== undefined) s += `event: ${ev.event}\n`;
  if (ev.id !== undefined) s += `id: ${ev.id}\n`;
  for (const line of ev.data.split('\n')) s += `data: ${line}\n`;
  return s + '\n';
}
