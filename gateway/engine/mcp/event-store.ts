// The events of one agent session on /mcp, kept so that an agent whose response stream (or
// standalone GET stream) dropped can resume it with Last-Event-ID (the SDK's EventStore for
// StreamableHTTPServerTransport; SEP-1699). Bounded by count and by bytes: the oldest events go
// first; a single message larger than the byte bound is not kept (its id is, as a gap), so a
// resume that would need it is refused rather than silently missing it. Lives and dies with the
// session (the transport holds it).
import type { EventId, EventStore, StreamId } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

export const DEFAULT_RESUME_EVENTS = 1000;
export const DEFAULT_RESUME_BYTES = 4 * 1024 * 1024;
/** how long an agent waits before resuming a dropped stream (the SSE `retry` field) */
export const RESUME_RETRY_MS = 1000;

interface Stored {
  readonly seq: number;
  readonly streamId: StreamId;
  /** the message as JSON (undefined: too large to keep) */
  readonly json: string | undefined;
  readonly bytes: number;
}

export class SessionEventStore implements EventStore {
  private readonly events: Stored[] = [];
  private head = 0;
  private seq = 0;
  private bytes = 0;

  constructor(
    readonly maxEvents = DEFAULT_RESUME_EVENTS,
    readonly maxBytes = DEFAULT_RESUME_BYTES,
  ) {}

  /** events kept, and their bytes */
  get size(): { events: number; bytes: number } {
    return { events: this.events.length - this.head, bytes: this.bytes };
  }

  storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    return Promise.resolve(this.storeJson(streamId, JSON.stringify(message)));
  }

  /** storeEvent for a message already serialised (the relay writes the same JSON): its event id. */
  storeJson(streamId: StreamId, json: string): EventId {
    const bytes = Buffer.byteLength(json) + streamId.length;
    const seq = ++this.seq;
    const kept = bytes <= this.maxBytes;
    this.events.push({ seq, streamId, json: kept ? json : undefined, bytes: kept ? bytes : 0 });
    if (kept) this.bytes += bytes;
    while (this.events.length - this.head > this.maxEvents || this.bytes > this.maxBytes) this.bytes -= this.events[this.head++]!.bytes;
    // compact now and then rather than shifting on every eviction
    if (this.head > 1024 && this.head * 2 > this.events.length) {
      this.events.splice(0, this.head);
      this.head = 0;
    }
    return String(seq);
  }

  private indexOf(eventId: EventId): number {
    if (!/^[1-9][0-9]{0,15}$/.test(eventId)) return -1;
    const seq = Number(eventId);
    const first = this.events[this.head];
    if (!first || seq < first.seq || seq > this.seq) return -1;
    // sequence numbers are consecutive: the position follows from the first one kept
    return this.head + (seq - first.seq);
  }

  /** Why a resume from eventId cannot be served (undefined: it can). */
  cannotResume(eventId: EventId): string | undefined {
    const i = this.indexOf(eventId);
    const limits = `this session keeps its last ${this.maxEvents} events, at most ${this.maxBytes} bytes`;
    if (i < 0) return `Last-Event-ID "${eventId.slice(0, 64)}" is not an event this session still keeps (${limits}); the stream cannot be resumed: send the request again.`;
    const streamId = this.events[i]!.streamId;
    for (let j = i + 1; j < this.events.length; j++) {
      const e = this.events[j]!;
      if (e.streamId === streamId && e.json === undefined)
        return `An event after Last-Event-ID "${eventId}" was larger than this session keeps (${limits}); the stream cannot be resumed: send the request again.`;
    }
    return undefined;
  }

  getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    const i = this.indexOf(eventId);
    return Promise.resolve(i < 0 ? undefined : this.events[i]!.streamId);
  }

  async replayEventsAfter(lastEventId: EventId, { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> }): Promise<StreamId> {
    const i = this.indexOf(lastEventId);
    if (i < 0) throw new Error(`unknown event id ${lastEventId}`);
    const streamId = this.events[i]!.streamId;
    // live, by sequence number: an event stored while replaying (the call still running) is
    // replayed too, and the SDK then skips it on the resumed stream
    for (let seq = this.events[i]!.seq + 1; seq <= this.seq; seq++) {
      const j = this.indexOf(String(seq));
      if (j < 0) throw new Error(`event ${seq} is no longer kept`);
      const e = this.events[j]!;
      if (e.streamId !== streamId) continue;
      if (e.json === undefined) throw new Error(`event ${e.seq} was too large to keep`);
      const message = JSON.parse(e.json) as JSONRPCMessage;
      // the priming event (an empty message) marks a place; it carries nothing to replay
      if (Object.keys(message).length) await send(String(e.seq), message);
    }
    return streamId;
  }

  clear(): void {
    this.events.length = 0;
    this.head = 0;
    this.bytes = 0;
  }
}
