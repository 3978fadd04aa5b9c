// Byte-level inspection of an OpenAI-style SSE stream from an upstream. The upstream's bytes are
// forwarded untouched — zero-copy slices of its chunks — except for the one event a client did
// not ask for (the usage chunk the gateway requested), which is cut out. Event boundaries are
// found in the bytes (LF, CRLF or CR line ends, comment lines, multi-line `data:`), and what a
// decision needs is recognised whatever the JSON formatting (compact, spaced, any field order):
// first content, finish reason, usage, tool calls, an error event, [DONE]. JSON is parsed only
// where a decision needs it: every event before the first content (a handful), and afterwards
// only an event whose bytes name a usage object, a string finish reason or an error.
//
// Events are decoded into strings only when output guards inspect them (`transform`); a guard
// may then pass, hold back, replace or block events.
//
// Scanning works on a latin1 view of each chunk (one character per byte, so offsets are byte
// offsets): line ends, field names and the JSON keys looked for are ASCII, and no byte of a
// multi-byte UTF-8 character is below 0x80, so a match in the view is a match in the bytes.
// String searches cost a fraction of Buffer.indexOf calls, whose native-call overhead was about
// half of the inspector's time (bench/RESULTS.md); the bytes forwarded are still the chunk's own.
import { isAscii } from 'node:buffer';
import { SSETooLargeError, formatSSE, type SSEEvent } from '../sse.js';

const LF = 10;
const CR = 13;
const COLON = 58;
const SPACE = 32;
const QUOTE = 34;
const BACKSLASH = 92;
const ERROR_KEY = '"error"';
// keys searched for, without their opening quote (see probe)
const USAGE = 'usage"';
const FINISH = 'finish_reason"';
const TOOL_CALLS = '_calls"'; // "tool_calls": checked for the "tool" before it
const CONTENT = 'content"';
const TEXT = 'text"';
const LF_BYTE = Buffer.from('\n');
/** finish reasons kept per answer (one per choice; n is bounded far lower by the upstreams) */
export const MAX_FINISH_REASONS = 128;

/** Events after guards: the events to send instead (an unchanged event is sent as its original bytes). */
export interface EventTransform {
  /** one data event (never [DONE]); returns the events to send now (none: held back) */
  event(ev: SSEEvent): SSEEvent[];
  /** the stream ended (or [DONE] came): the events still held that are to be sent */
  end(): SSEEvent[];
}

export interface InspectorOptions {
  kind: 'chat' | 'completions';
  /** the client asked for usage (stream_options.include_usage): the usage chunk stays */
  clientWantsUsage: boolean;
  /** largest event (bytes); a larger one throws SSETooLargeError */
  maxEventBytes: number;
  /** output guards over events; without it no event is ever decoded to a string */
  transform?: EventTransform;
  /** [DONE] is recognised but not sent (a translated protocol ends with its own events) */
  dropDone?: boolean;
  /** how many choices the answer has (the request's `n`, default 1): the stream is finished when
   * each of them has a finish reason */
  choices?: number;
}

export interface Usage {
  prompt: number;
  completion: number;
}

/** a key's value: 'string' is a non-empty string, 'empty' the empty one */
type KeyProbe = 'none' | 'null' | 'string' | 'empty' | 'object' | 'other' | 'unsure';

/** What follows `"key"` as a JSON key in `buf`: the kind of its value, whatever the spacing. */
export function probeKey(buf: Buffer, key: Buffer): KeyProbe {
  const k = key.toString('latin1');
  const s = buf.toString('latin1');
  const pat = k.slice(1); // without the opening quote (see probe)
  return probe(s, pat, 0, s.length, s.indexOf(pat));
}

/**
 * What follows the key `"` + pat (pat ends with the key's closing quote) within s[from, to): the
 * kind of its value. `first` is the first place pat occurs at or after `from` (-1: nowhere).
 *
 * The search is for the key without its opening quote, so that the pattern starts with a letter
 * or `_`: V8 looks for a pattern's first character and then compares, and `"` is every few bytes
 * in JSON (searching `"usage"` cost 15× `usage"`, bench/RESULTS.md).
 */
function probe(s: string, pat: string, from: number, to: number, first: number): KeyProbe {
  let result: KeyProbe = 'none';
  for (let at = first; at !== -1 && at < to; at = s.indexOf(pat, at + pat.length)) {
    const q = at - 1;
    if (q < from || s.charCodeAt(q) !== QUOTE) continue; // part of a longer key or string
    // inside a string the quotes are escaped: a key's opening quote is not preceded by a backslash
    if (q > from && s.charCodeAt(q - 1) === BACKSLASH) {
      result = 'unsure';
      continue;
    }
    let i = at + pat.length;
    while (i < to && isSpace(s.charCodeAt(i))) i++;
    if (i >= to || s.charCodeAt(i) !== COLON) continue; // a string value that happens to read "usage"
    i++;
    while (i < to && isSpace(s.charCodeAt(i))) i++;
    const c = i < to ? s.charCodeAt(i) : -1;
    const kind: KeyProbe = c === 0x7b /* { */ ? 'object' : c === QUOTE ? (i + 1 < to && s.charCodeAt(i + 1) !== QUOTE ? 'string' : 'empty') : c === 0x6e /* n */ ? 'null' : 'other';
    if (kind === 'object' || kind === 'string') return kind;
    if (result === 'none') result = kind;
  }
  return result;
}

function isSpace(c: number): boolean {
  return c === SPACE || c === 9 || c === LF || c === CR;
}

/** The JSON in s[from, to) starts with an "error" key: {"error": ...} in any spacing. */
function startsWithErrorKey(s: string, from: number, to: number): boolean {
  let i = from;
  while (i < to && isSpace(s.charCodeAt(i))) i++;
  if (s.charCodeAt(i) !== 0x7b) return false;
  i++;
  while (i < to && isSpace(s.charCodeAt(i))) i++;
  return i + ERROR_KEY.length <= to && s.startsWith(ERROR_KEY, i);
}

/** The parsed data of an event whose first key is "error": is it an error (not null, false or
 * empty)? Data that does not parse is taken as one. */
function errorValueSet(j: ParsedChunk | undefined): boolean {
  if (!j) return true;
  const e = j.error;
  return e !== null && e !== undefined && e !== false && e !== '';
}

export function readUsage(u: unknown): Usage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const o = u as Record<string, unknown>;
  const p = o.prompt_tokens ?? o.input_tokens;
  const c = o.completion_tokens ?? o.output_tokens;
  // a usage block that counts nothing ({}) is no count: the request is estimated, not free
  if (p === undefined && c === undefined) return undefined;
  const prompt = tokenCount(p);
  const completion = tokenCount(c);
  // a count that is not a whole number of tokens (negative, fractional, a word) makes the whole
  // block untrustworthy: estimated instead, never charged (or credited) as reported
  if (prompt === undefined || completion === undefined) return undefined;
  return { prompt, completion };
}

/** A reported token count: a non-negative whole number (a numeric string too); absent is 0. */
function tokenCount(v: unknown): number | undefined {
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

interface ParsedChunk {
  usage?: unknown;
  error?: unknown;
  choices?: { index?: unknown; delta?: { content?: unknown; tool_calls?: unknown; refusal?: unknown; reasoning_content?: unknown; reasoning?: unknown }; text?: unknown; finish_reason?: unknown }[];
}

/** One parsed event, before any content was seen: is it content the client must get? */
function isContent(kind: 'chat' | 'completions', j: ParsedChunk): boolean {
  if (j.usage && typeof j.usage === 'object') return true;
  const c = Array.isArray(j.choices) ? j.choices[0] : undefined;
  if (!c) return false;
  if (c.finish_reason) return true;
  if (kind === 'completions') return typeof c.text === 'string' && c.text.length > 0;
  const d = c.delta;
  return (
    !!d &&
    ((typeof d.content === 'string' && d.content.length > 0) ||
      (Array.isArray(d.tool_calls) && d.tool_calls.length > 0) ||
      (typeof d.refusal === 'string' && d.refusal.length > 0) ||
      (typeof d.reasoning_content === 'string' && d.reasoning_content.length > 0) ||
      (typeof d.reasoning === 'string' && d.reasoning.length > 0))
  );
}

/** Events a guard sent instead of the upstream's, as the bytes to write. */
function encodeEvents(events: SSEEvent[]): Buffer {
  return Buffer.from(events.map(formatSSE).join(''));
}

/** Where a pattern next occurs in one string: searched forward once, however many events ask
 * (events are inspected in order, so the positions asked for only grow). */
class Hits {
  private pos = -2; // not searched yet
  constructor(
    private readonly s: string,
    private readonly pat: string,
  ) {}
  /** the first occurrence at or after `from` (-1: none) */
  from(from: number): number {
    if (this.pos !== -1 && this.pos < from) this.pos = this.s.indexOf(this.pat, from);
    return this.pos;
  }
}

/** The searches over one string (a chunk's latin1 view, or an event that spanned chunks). */
class Scan {
  readonly lf: Hits;
  readonly cr: Hits;
  readonly usage: Hits;
  readonly finish: Hits;
  readonly tools: Hits;
  readonly content: Hits;
  constructor(s: string, contentKey: string) {
    this.lf = new Hits(s, '\n');
    this.cr = new Hits(s, '\r');
    this.usage = new Hits(s, USAGE);
    this.finish = new Hits(s, FINISH);
    this.tools = new Hits(s, TOOL_CALLS);
    this.content = new Hits(s, contentKey);
  }
}

/** event(): the event goes to the client as its own bytes */
const SAME = Symbol('same');

export class StreamInspector {
  /** an event with content (or a finish reason, usage, tool call) was seen */
  contentSeen = false;
  /** every choice has a finish reason (InspectorOptions.choices) */
  finished = false;
  /** the choices (by index) that have a finish reason, when more than one is expected */
  private finishedChoices: Set<unknown> | undefined;
  /** the finish reasons, in the order the choices finished (gen_ai.response.finish_reasons) */
  readonly finishReasons: string[] = [];
  /** [DONE] was seen */
  done = false;
  /** data events forwarded (not counting [DONE] or a removed usage chunk) */
  events = 0;
  /** characters of those events' data, and of the shortest one (about an event's envelope
   * without content): an estimate of the answer's text when the upstream reports no usage */
  dataChars = 0;
  minDataChars = Infinity;
  /** the last usage the upstream reported */
  usage: Usage | undefined;
  /** tool calls appeared in the stream */
  toolCalls = false;
  /** the data of the first error event (at most 500 characters) */
  errorEvent: string | undefined;

  private readonly max: number;
  private readonly contentKey: string;
  /** bytes of the unfinished event, from earlier chunks */
  private parts: Buffer[] = [];
  private partsLen = 0;
  /** the current line has no bytes yet */
  private lineEmpty = true;
  /** the last byte was a CR: a LF right after it belongs to it */
  private crPending = false;
  /** that CR ended an event; was the event sent as it was (then its LF goes too)? */
  private crEnded: 'none' | 'sent' | 'not-sent' = 'none';

  constructor(private readonly o: InspectorOptions) {
    this.max = o.maxEventBytes;
    this.contentKey = o.kind === 'completions' ? TEXT : CONTENT;
  }

  /** Bytes from the upstream; returns what to send to the client now (complete events only). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const n = chunk.length;
    if (n === 0) return out;
    const str = chunk.toString('latin1');
    const ascii = this.viewIsText(chunk);
    let scan: Scan | undefined;
    let i = 0;
    /** start of the current event in this chunk (its earlier bytes are in parts) */
    let evStart = 0;
    /** a run of unchanged events [runStart, evStart) not yet pushed to out */
    let runStart = 0;
    if (this.crPending) {
      this.crPending = false;
      if (str.charCodeAt(0) === LF) {
        i = 1;
        // the LF of a CRLF that ended an event belongs to that event: sent or cut with it
        if (this.crEnded !== 'none') {
          if (this.crEnded === 'not-sent') runStart = 1;
          evStart = 1;
        }
      }
    }
    this.crEnded = 'none';
    let lf = str.indexOf('\n', i);
    let cr = str.indexOf('\r', i);
    while (lf !== -1 || cr !== -1) {
      const t = cr === -1 || (lf !== -1 && lf < cr) ? lf : cr;
      let next: number;
      if (t === cr) {
        if (t + 1 < n) next = str.charCodeAt(t + 1) === LF ? t + 2 : t + 1;
        else {
          next = t + 1;
          this.crPending = true;
        }
      } else next = t + 1;
      const emptyLine = this.lineEmpty && t === i;
      this.lineEmpty = true;
      i = next;
      if (lf !== -1 && lf < i) lf = str.indexOf('\n', i);
      if (cr !== -1 && cr < i) cr = str.indexOf('\r', i);
      if (!emptyLine) continue;
      // an event ends at `next`
      const size = this.partsLen + (next - evStart);
      if (size > this.max) throw new SSETooLargeError(this.max);
      if (this.partsLen > 0) {
        // it began in an earlier chunk: its bytes are joined, and always written as one piece
        const ev = Buffer.concat([...this.parts, chunk.subarray(evStart, next)], size);
        this.parts = [];
        this.partsLen = 0;
        const evStr = ev.toString('latin1');
        const wasDone = this.done;
        const r = this.event(evStr, ev, 0, size, new Scan(evStr, this.contentKey), this.viewIsText(ev));
        if (this.crPending) this.crEnded = r === SAME ? 'sent' : 'not-sent';
        if (runStart < evStart) out.push(chunk.subarray(runStart, evStart));
        const result = r === SAME ? ev : r;
        if (result) out.push(result);
        runStart = next;
        if (!wasDone && this.completeDoneCrlf(r, evStr, size)) out.push(LF_BYTE);
      } else {
        const wasDone = this.done;
        const r = this.event(str, chunk, evStart, next, (scan ??= new Scan(str, this.contentKey)), ascii);
        if (this.crPending) this.crEnded = r === SAME ? 'sent' : 'not-sent';
        if (r !== SAME) {
          if (runStart < evStart) out.push(chunk.subarray(runStart, evStart));
          if (r) out.push(r);
          runStart = next;
        }
        // unchanged: extends the run of bytes sent as they are
        if (!wasDone && this.completeDoneCrlf(r, str, next)) {
          if (runStart < next) out.push(chunk.subarray(runStart, next));
          runStart = next;
          out.push(LF_BYTE);
        }
      }
      evStart = next;
    }
    if (runStart < evStart) out.push(runStart === 0 && evStart === n ? chunk : chunk.subarray(runStart, evStart));
    if (evStart < n) {
      if (i < n) this.lineEmpty = false;
      this.partsLen += n - evStart;
      if (this.partsLen > this.max) throw new SSETooLargeError(this.max);
      this.parts.push(chunk.subarray(evStart));
    }
    return out;
  }

  /**
   * [DONE] (just seen, and sent) ended at a CR that is the last byte of its chunk, in a stream
   * whose line ends are CRLF (its data line ended so): the LF that completes that CRLF is in the
   * upstream's next chunk, which the reader never asks for — it stops at [DONE]. The LF is sent
   * now instead (true), and skipped should that chunk still be pushed. `s` holds the event,
   * ending at `end`.
   */
  private completeDoneCrlf(r: Buffer | undefined | typeof SAME, s: string, end: number): boolean {
    if (!this.done || !this.crPending || r === undefined || this.o.dropDone) return false;
    if (end < 3 || s.charCodeAt(end - 2) !== LF || s.charCodeAt(end - 3) !== CR) return false;
    this.crEnded = 'not-sent';
    return true;
  }

  /** Whether the latin1 view of `b` is its UTF-8 text too (all ASCII), asked only when output
   * guards read events: a guarded event's data is then a slice of the view (no copy), not decoded
   * again from the bytes (one native check per chunk). */
  private viewIsText(b: Buffer): boolean {
    return this.o.transform !== undefined && isAscii(b);
  }

  /** The upstream ended. An unterminated last event is dropped (WHATWG); held events are released. */
  end(): Buffer[] {
    this.parts = [];
    this.partsLen = 0;
    const t = this.o.transform;
    if (!t || this.done) return [];
    const rest = t.end();
    return rest.length ? [encodeEvents(rest)] : [];
  }

  /** One complete event, s[a, b) (its latin1 view, through the blank line; src holds its bytes at
   * the same offsets): SAME to send its bytes as they are, other bytes, or undefined to send
   * nothing. Nothing is sliced or copied unless a decision needs it. `ascii`: src's bytes are all
   * ASCII (s is then their text). */
  private event(s: string, src: Buffer, a: number, b: number, scan: Scan, ascii: boolean): Buffer | undefined | typeof SAME {
    // fields: only data (and the event name) matter; the data lines' values are [start, end) ranges
    let d0 = -1;
    let d1 = -1;
    let more: number[] | undefined;
    let name: string | undefined;
    let i = a;
    while (i < b) {
      const lf = scan.lf.from(i);
      const cr = scan.cr.from(i);
      let e = lf === -1 ? (cr === -1 ? b : cr) : cr === -1 || lf < cr ? lf : cr;
      if (e > b) e = b;
      if (e > i && s.charCodeAt(i) !== COLON) {
        let c = s.indexOf(':', i);
        if (c === -1 || c > e) c = e;
        const fieldLen = c - i;
        let v = c < e ? c + 1 : e;
        if (v < e && s.charCodeAt(v) === SPACE) v++;
        if (fieldLen === 4 && s.startsWith('data', i)) {
          if (d0 === -1) {
            d0 = v;
            d1 = e;
          } else (more ??= []).push(v, e);
        } else if (fieldLen === 5 && s.startsWith('event', i)) name = src.toString('utf8', v, e);
      }
      i = e < b && s.charCodeAt(e) === CR && s.charCodeAt(e + 1) === LF ? e + 2 : e + 1;
    }
    if (d0 === -1) return SAME; // a comment or an empty block: not an event, passed as it is
    // the data's bytes, only when something must decode them
    const ranges = more;
    let dataBuf: Buffer | undefined;
    const bytes = (): Buffer => (dataBuf ??= ranges ? joinLines(src, d0, d1, ranges) : src.subarray(d0, d1));
    // ...and as text, decoded once for both the parse and the guards (one data line: straight
    // from the source bytes, no Buffer view made)
    let dataText: string | undefined;
    const text = (): string => (dataText ??= ranges ? bytes().toString('utf8') : ascii ? s.slice(d0, d1) : src.toString('utf8', d0, d1));
    // where the data is read: in place (one data line, the usual case), or its lines joined
    let ds = s;
    let p0 = d0;
    let p1 = d1;
    let dscan = scan;
    if (more) {
      ds = s.slice(d0, d1);
      for (let k = 0; k < more.length; k += 2) ds += '\n' + s.slice(more[k], more[k + 1]);
      p0 = 0;
      p1 = ds.length;
      dscan = new Scan(ds, this.contentKey);
    }

    // after the upstream's own error event nothing more of its stream goes on (the caller ends
    // the stream as interrupted): not a [DONE] that would make the error look like a clean end
    if (this.errorEvent !== undefined) {
      if (p1 - p0 === 6 && ds.startsWith('[DONE]', p0)) this.done = true;
      return undefined;
    }
    if (p1 - p0 === 6 && ds.startsWith('[DONE]', p0)) {
      this.done = true;
      this.contentSeen = true;
      const t = this.o.transform;
      const rest = t ? t.end() : [];
      if (this.o.dropDone) return rest.length ? encodeEvents(rest) : undefined;
      return rest.length ? Buffer.concat([encodeEvents(rest), src.subarray(a, b)]) : SAME;
    }

    let parsed: ParsedChunk | undefined;
    let parseFailed = false;
    const parse = (): ParsedChunk | undefined => {
      if (parsed === undefined && !parseFailed) {
        try {
          const j: unknown = JSON.parse(text());
          if (j && typeof j === 'object') parsed = j;
          else parseFailed = true;
        } catch {
          parseFailed = true;
        }
      }
      return parsed;
    };

    // an error event: named so, or data whose first key is "error" with a value (some servers
    // write "error": null in every chunk)
    if (name === 'error' || (startsWithErrorKey(ds, p0, p1) && errorValueSet(parse()))) {
      if (this.errorEvent === undefined) {
        const d = bytes();
        this.errorEvent = d.toString('utf8', 0, Math.min(d.length, 2000)).slice(0, 500);
      }
    } else if (!this.contentSeen) {
      // a non-empty "content" (chat) or "text" (completions) string is content without parsing;
      // anything else is judged on the parsed event
      if (probe(ds, this.contentKey, p0, p1, dscan.content.from(p0)) === 'string') this.contentSeen = true;
      else {
        const j = parse();
        // not JSON, or not ours to judge: the client gets it, and it counts as content
        if (!j || isContent(this.o.kind, j)) this.contentSeen = true;
      }
    }

    let drop = false;
    const u = probe(ds, USAGE, p0, p1, dscan.usage.from(p0));
    if (u === 'object' || u === 'unsure') {
      const j = parse();
      if (j && j.usage && typeof j.usage === 'object') {
        // a count that cannot be trusted leaves the request estimated (readUsage)
        const usage = readUsage(j.usage);
        if (usage) this.usage = usage;
        // the extra chunk the gateway asked for (choices: []) goes only to a client that asked too
        if (!this.o.clientWantsUsage && Array.isArray(j.choices) && j.choices.length === 0) drop = true;
      }
    }
    // a finish reason (one event per choice): parsed, to keep the reasons
    const f = probe(ds, FINISH, p0, p1, dscan.finish.from(p0));
    if (f === 'string' || f === 'unsure') {
      const c = parse()?.choices;
      if (Array.isArray(c)) {
        const n = this.o.choices ?? 1;
        for (let k = 0; k < c.length; k++) {
          const x = c[k];
          if (typeof x?.finish_reason !== 'string' || !x.finish_reason) continue;
          if (n <= 1) this.finished = true;
          else {
            // n choices stream interleaved: the answer is whole when each has finished
            const done = (this.finishedChoices ??= new Set());
            done.add(x.index ?? k);
            if (done.size >= n) this.finished = true;
          }
          if (this.finishReasons.length < MAX_FINISH_REASONS) this.finishReasons.push(x.finish_reason.slice(0, 64));
        }
      } else if (f === 'string' && (this.o.choices ?? 1) <= 1) this.finished = true;
    }
    if (!this.toolCalls) {
      const at = dscan.tools.from(p0);
      if (at !== -1 && at < p1) {
        const k = probe(ds, 'tool_calls"', p0, p1, ds.indexOf('tool_calls"', Math.max(p0, at - 4)));
        if (k === 'other' || k === 'object' || k === 'string' || k === 'unsure') this.toolCalls = true;
      }
    }
    if (drop) return undefined;
    this.events++;
    this.dataChars += p1 - p0;
    if (p1 - p0 < this.minDataChars) this.minDataChars = p1 - p0;

    const t = this.o.transform;
    if (!t) return SAME;
    // (the parse already made for a decision goes along: the guard reads it instead of parsing again)
    const before: SSEEvent = parsed ? { event: name, data: text(), id: undefined, parsed } : { event: name, data: text(), id: undefined };
    const after = t.event(before);
    if (after.length === 1 && after[0] === before) return SAME;
    return after.length ? encodeEvents(after) : undefined;
  }
}

/** The bytes of a multi-line data field: the first line's value [d0, d1) and the others' (start,
 * end pairs), joined with LF. */
function joinLines(ev: Buffer, d0: number, d1: number, more: number[]): Buffer {
  const bufs: Buffer[] = [ev.subarray(d0, d1)];
  for (let k = 0; k < more.length; k += 2) bufs.push(Buffer.from([LF]), ev.subarray(more[k], more[k + 1]));
  return Buffer.concat(bufs);
}
