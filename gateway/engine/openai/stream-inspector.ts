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
import { SSETooLargeError, formatSSE, type SSEEvent } from '../sse.js';

const LF = 10;
const CR = 13;
const COLON = 58;
const SPACE = 32;
const QUOTE = 34;
const BACKSLASH = 92;
const USAGE_KEY = '"usage"';
const FINISH_KEY = '"finish_reason"';
const ERROR_KEY = '"error"';
const TOOL_CALLS_KEY = '"tool_calls"';

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
}

export interface Usage {
  prompt: number;
  completion: number;
}

type KeyProbe = 'none' | 'null' | 'string' | 'object' | 'other' | 'unsure';

/** What follows `"key"` as a JSON key in `buf`: the kind of its value, whatever the spacing. */
export function probeKey(buf: Buffer, key: Buffer): KeyProbe {
  return probe(buf.toString('latin1'), key.toString('latin1'));
}

/** probeKey on a latin1 view of the bytes. */
function probe(s: string, key: string): KeyProbe {
  let result: KeyProbe = 'none';
  const n = s.length;
  for (let at = s.indexOf(key); at !== -1; at = s.indexOf(key, at + key.length)) {
    // inside a string the quotes are escaped: a key's opening quote is not preceded by a backslash
    if (at > 0 && s.charCodeAt(at - 1) === BACKSLASH) {
      result = 'unsure';
      continue;
    }
    let i = at + key.length;
    while (i < n && isSpace(s.charCodeAt(i))) i++;
    if (s.charCodeAt(i) !== COLON) continue; // a string value that happens to read "usage"
    i++;
    while (i < n && isSpace(s.charCodeAt(i))) i++;
    const c = s.charCodeAt(i);
    const kind: KeyProbe = c === 0x7b /* { */ ? 'object' : c === QUOTE ? 'string' : c === 0x6e /* n */ ? 'null' : 'other';
    if (kind === 'object' || kind === 'string') return kind;
    if (result === 'none') result = kind;
  }
  return result;
}

function isSpace(c: number): boolean {
  return c === SPACE || c === 9 || c === LF || c === CR;
}

/** The JSON starts with an "error" key: {"error": ...} in any spacing. */
function startsWithErrorKey(s: string): boolean {
  let i = 0;
  const n = s.length;
  while (i < n && isSpace(s.charCodeAt(i))) i++;
  if (s.charCodeAt(i) !== 0x7b) return false;
  i++;
  while (i < n && isSpace(s.charCodeAt(i))) i++;
  return s.startsWith(ERROR_KEY, i);
}

export function readUsage(u: unknown): Usage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const o = u as Record<string, unknown>;
  const prompt = Number(o.prompt_tokens ?? o.input_tokens ?? 0);
  const completion = Number(o.completion_tokens ?? o.output_tokens ?? 0);
  if (!Number.isFinite(prompt) || !Number.isFinite(completion)) return undefined;
  return { prompt, completion };
}

interface ParsedChunk {
  usage?: unknown;
  error?: unknown;
  choices?: { delta?: { content?: unknown; tool_calls?: unknown; refusal?: unknown; reasoning_content?: unknown }; text?: unknown; finish_reason?: unknown }[];
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
      (typeof d.reasoning_content === 'string' && d.reasoning_content.length > 0))
  );
}

/** Events a guard sent instead of the upstream's, as the bytes to write. */
function encodeEvents(events: SSEEvent[]): Buffer {
  return Buffer.from(events.map(formatSSE).join(''));
}

export class StreamInspector {
  /** an event with content (or a finish reason, usage, tool call) was seen */
  contentSeen = false;
  /** a finish reason was seen */
  finished = false;
  /** [DONE] was seen */
  done = false;
  /** data events forwarded (not counting [DONE] or a removed usage chunk) */
  events = 0;
  /** the last usage the upstream reported */
  usage: Usage | undefined;
  /** tool calls appeared in the stream */
  toolCalls = false;
  /** the data of the first error event (at most 500 characters) */
  errorEvent: string | undefined;

  private readonly max: number;
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
  }

  /** Bytes from the upstream; returns what to send to the client now (complete events only). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const n = chunk.length;
    if (n === 0) return out;
    const str = chunk.toString('latin1');
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
      const spans = this.partsLen > 0;
      const ev = spans ? Buffer.concat([...this.parts, chunk.subarray(evStart, next)], size) : chunk.subarray(evStart, next);
      this.parts = [];
      this.partsLen = 0;
      const result = this.event(ev, spans ? ev.toString('latin1') : str.slice(evStart, next));
      if (this.crPending) this.crEnded = result === ev ? 'sent' : 'not-sent';
      if (result === ev && !spans) {
        // unchanged and inside this chunk: extends the run of bytes sent as they are
      } else {
        if (runStart < evStart) out.push(chunk.subarray(runStart, evStart));
        if (result) out.push(result);
        runStart = next;
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

  /** The upstream ended. An unterminated last event is dropped (WHATWG); held events are released. */
  end(): Buffer[] {
    this.parts = [];
    this.partsLen = 0;
    const t = this.o.transform;
    if (!t || this.done) return [];
    const rest = t.end();
    return rest.length ? [encodeEvents(rest)] : [];
  }

  /** One complete event (its bytes through the blank line, and their latin1 view): the bytes to
   * send (the same buffer when unchanged), or undefined to send nothing. */
  private event(ev: Buffer, s: string): Buffer | undefined {
    // fields: only data (and the event name) matter; the data lines' values are [start, end) ranges
    let d0 = -1;
    let d1 = -1;
    let more: number[] | undefined;
    let name: string | undefined;
    let i = 0;
    const n = s.length;
    let lf = s.indexOf('\n');
    let cr = s.indexOf('\r');
    while (i < n) {
      if (lf !== -1 && lf < i) lf = s.indexOf('\n', i);
      if (cr !== -1 && cr < i) cr = s.indexOf('\r', i);
      const e = lf === -1 ? (cr === -1 ? n : cr) : cr === -1 || lf < cr ? lf : cr;
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
        } else if (fieldLen === 5 && s.startsWith('event', i)) name = ev.toString('utf8', v, e);
      }
      i = e < n && s.charCodeAt(e) === CR && s.charCodeAt(e + 1) === LF ? e + 2 : e + 1;
    }
    if (d0 === -1) return ev; // a comment or an empty block: not an event, passed as it is
    // the data: its latin1 view for the probes; its bytes only when something must decode them
    let dataStr = s.slice(d0, d1);
    if (more) for (let k = 0; k < more.length; k += 2) dataStr += '\n' + s.slice(more[k], more[k + 1]);
    const ranges = more;
    let dataBuf: Buffer | undefined;
    const bytes = (): Buffer => (dataBuf ??= ranges ? joinLines(ev, d0, d1, ranges) : ev.subarray(d0, d1));

    if (dataStr === '[DONE]') {
      this.done = true;
      this.contentSeen = true;
      const t = this.o.transform;
      const rest = t ? t.end() : [];
      if (this.o.dropDone) return rest.length ? encodeEvents(rest) : undefined;
      return rest.length ? Buffer.concat([encodeEvents(rest), ev]) : ev;
    }

    let parsed: ParsedChunk | undefined;
    let parseFailed = false;
    const parse = (): ParsedChunk | undefined => {
      if (parsed === undefined && !parseFailed) {
        try {
          const j: unknown = JSON.parse(bytes().toString('utf8'));
          if (j && typeof j === 'object') parsed = j;
          else parseFailed = true;
        } catch {
          parseFailed = true;
        }
      }
      return parsed;
    };

    if (name === 'error' || startsWithErrorKey(dataStr)) {
      if (this.errorEvent === undefined) {
        const b = bytes();
        this.errorEvent = b.toString('utf8', 0, Math.min(b.length, 2000)).slice(0, 500);
      }
    } else if (!this.contentSeen) {
      const j = parse();
      // not JSON, or not ours to judge: the client gets it, and it counts as content
      if (!j || isContent(this.o.kind, j)) this.contentSeen = true;
    }

    let drop = false;
    const u = probe(dataStr, USAGE_KEY);
    if (u === 'object' || u === 'unsure') {
      const j = parse();
      const usage = j ? readUsage(j.usage) : undefined;
      if (usage) {
        this.usage = usage;
        // the extra chunk the gateway asked for (choices: []) goes only to a client that asked too
        if (!this.o.clientWantsUsage && Array.isArray(j!.choices) && j!.choices.length === 0) drop = true;
      }
    }
    if (!this.finished) {
      const f = probe(dataStr, FINISH_KEY);
      if (f === 'string') this.finished = true;
      else if (f === 'unsure') {
        const c = parse()?.choices;
        if (Array.isArray(c) && c.some((x) => typeof x?.finish_reason === 'string' && x.finish_reason)) this.finished = true;
      }
    }
    if (!this.toolCalls && dataStr.indexOf(TOOL_CALLS_KEY) !== -1 && probe(dataStr, TOOL_CALLS_KEY) !== 'null') this.toolCalls = true;
    if (drop) return undefined;
    this.events++;

    const t = this.o.transform;
    if (!t) return ev;
    const before: SSEEvent = { event: name, data: bytes().toString('utf8'), id: undefined };
    const after = t.event(before);
    if (after.length === 1 && after[0] === before) return ev;
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
