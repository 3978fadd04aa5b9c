// OTLP/HTTP (protobuf) export of the tracer's spans to a collector on the LAN, when
// settings.telemetry.otlp_endpoint is set. The request path only appends to a bounded queue;
// a timer sends batches, one export at a time, each bounded by otlp_timeout_ms. A collector that
// hangs, fails or is gone costs the requests nothing: the queue fills and further spans are
// dropped (and counted) until it answers again.
import { SpanKind, SpanStatusCode, TraceFlags, type HrTime } from '@opentelemetry/api';
import type { ExportResultCode } from '@opentelemetry/core';
// the exporter (protobuf encoding, its HTTP client: ~15 MB of resident memory) is loaded only
// when an endpoint is set
import type { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
// core, resources and the exporter (with semantic-conventions behind them) are loaded when an
// OTLP endpoint is set (update()): a gateway that exports nothing keeps their memory
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import type { TelemetrySettings } from '../config/schema.js';
import type { SpanData } from './span.js';

const BATCH = 512;
const DELAY_MS = 1000;

const KIND: Record<SpanData['kind'], SpanKind> = {
  model: SpanKind.SERVER,
  tool: SpanKind.SERVER,
  attempt: SpanKind.CLIENT,
  queue: SpanKind.INTERNAL,
  guardrail: SpanKind.INTERNAL,
};
const STATUS = { ok: SpanStatusCode.OK, error: SpanStatusCode.ERROR, unset: SpanStatusCode.UNSET } as const;
const SCOPE = { name: 'airlock' };

function hr(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

/** The OTLP exporter's view of one of our spans. */
export function toReadableSpan(s: SpanData, resource: Resource): ReadableSpan {
  const ctx = { traceId: s.traceId, spanId: s.spanId, traceFlags: TraceFlags.SAMPLED };
  return {
    name: s.name,
    kind: KIND[s.kind],
    spanContext: () => ctx,
    parentSpanContext: s.parentSpanId ? { traceId: s.traceId, spanId: s.parentSpanId, traceFlags: TraceFlags.SAMPLED } : undefined,
    startTime: hr(s.start),
    endTime: hr(s.end),
    duration: hr(s.end - s.start),
    status: s.statusMessage ? { code: STATUS[s.status], message: s.statusMessage } : { code: STATUS[s.status] },
    attributes: s.attributes,
    links: [],
    events: [],
    ended: true,
    resource,
    instrumentationScope: SCOPE,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

/** `${env:AIRLOCK_SECRET_X}` → the variable's value (missing: the header is left out, and said so). */
export function resolveHeaders(h: Record<string, string> | undefined, env: NodeJS.ProcessEnv, log: (l: string) => void): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, ref] of Object.entries(h ?? {})) {
    const m = /^\$\{env:([A-Za-z0-9_]+)\}$/.exec(ref);
    const v = m ? env[m[1]!] : undefined;
    if (v === undefined) log(`telemetry: otlp_headers.${name} names ${ref}, which is not set in the gateway's environment; sent without it`);
    else out[name] = v;
  }
  return out;
}

export interface OtlpState {
  endpoint: string | null;
  queued: number;
  exported: number;
  dropped: number;
  failed_exports: number;
  last_error: string | null;
}

export class OtlpExport {
  private exporter: OTLPTraceExporter | undefined;
  private key = '';
  private endpoint: string | undefined;
  private queue: SpanData[] = [];
  private max = 0;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  /** built with the exporter (update()) */
  private resource: Resource | undefined;
  private success: ExportResultCode | undefined;
  exported = 0;
  dropped = 0;
  failedExports = 0;
  lastError: string | undefined;

  constructor(
    private readonly version: string,
    private readonly log: (line: string) => void,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  get enabled(): boolean {
    return this.key !== '';
  }

  /** Start, stop or re-point the export after a settings change. */
  update(t: TelemetrySettings): void {
    const key = t.otlp_endpoint ? JSON.stringify([t.otlp_endpoint, t.otlp_headers ?? {}, t.otlp_timeout_ms]) : '';
    this.max = t.otlp_max_queue;
    if (key === this.key) return;
    this.key = key;
    const old = this.exporter;
    this.exporter = undefined;
    this.endpoint = t.otlp_endpoint;
    if (old) void old.shutdown().catch(() => {});
    if (!t.otlp_endpoint) {
      this.queue = [];
      return;
    }
    const options = { url: t.otlp_endpoint, headers: resolveHeaders(t.otlp_headers, this.env, this.log), timeoutMillis: t.otlp_timeout_ms };
    void Promise.all([import('@opentelemetry/exporter-trace-otlp-proto'), import('@opentelemetry/resources'), import('@opentelemetry/core')]).then(
      ([m, resources, core]) => {
        if (this.key !== key) return; // re-pointed or switched off meanwhile
        this.resource ??= resources.resourceFromAttributes({ 'service.name': 'airlock', 'service.version': this.version });
        this.success = core.ExportResultCode.SUCCESS;
        this.exporter = new m.OTLPTraceExporter(options);
        if (this.queue.length && !this.timer && !this.busy) this.send();
      },
      (e: Error) => this.log(`telemetry: the OTLP exporter cannot be loaded (${e.message}); spans are not exported`),
    );
  }

  /** A sink for the tracer: queue the spans (dropped when otlp_max_queue already wait). */
  readonly record = (spans: SpanData[]): void => {
    if (!this.key) return;
    for (let i = 0; i < spans.length; i++) {
      if (this.queue.length >= this.max) {
        this.dropped += spans.length - i;
        break;
      }
      this.queue.push(spans[i]!);
    }
    if (!this.timer && !this.busy) {
      this.timer = setTimeout(() => this.send(), DELAY_MS);
      this.timer.unref();
    }
  };

  private send(): void {
    this.timer = undefined;
    const exporter = this.exporter;
    if (!exporter || this.busy || !this.queue.length) return; // (a loading exporter sends when it is there)
    const batch = this.queue.length <= BATCH ? this.queue : this.queue.slice(0, BATCH);
    this.queue = this.queue.length <= BATCH ? [] : this.queue.slice(BATCH);
    this.busy = true;
    const resource = this.resource!; // set before the exporter
    const spans = batch.map((s) => toReadableSpan(s, resource));
    exporter.export(spans, (r) => {
      this.busy = false;
      if (r.code === this.success) {
        this.exported += spans.length;
        if (this.lastError) this.log(`telemetry: the collector at ${this.endpoint} takes spans again`);
        this.lastError = undefined;
      } else {
        this.failedExports++;
        this.dropped += spans.length;
        const msg = r.error?.message ?? 'export failed';
        if (!this.lastError) this.log(`telemetry: export to ${this.endpoint} failed (${msg}); ${spans.length} span(s) dropped, will keep trying`);
        this.lastError = msg;
      }
      if (this.queue.length && !this.timer) {
        this.timer = setTimeout(() => this.send(), this.queue.length >= BATCH ? 0 : DELAY_MS);
        this.timer.unref();
      }
    });
  }

  state(): OtlpState {
    return {
      endpoint: this.endpoint ?? null,
      queued: this.queue.length,
      exported: this.exported,
      dropped: this.dropped,
      failed_exports: this.failedExports,
      last_error: this.lastError ?? null,
    };
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const e = this.exporter;
    this.exporter = undefined;
    this.key = ''; // an exporter still loading is not started
    if (e) await e.shutdown().catch(() => {});
  }
}
