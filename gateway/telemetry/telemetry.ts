// Tracing for one gateway: the tracer (spans from the pipeline's lifecycle events), the local span
// store and the OTLP export, switched and re-pointed by settings.telemetry.
import type { TelemetrySettings } from '../config/schema.js';
import type { DB } from '../store/db.js';
import type { RecorderThread } from '../store/recorder.js';
import { VERSION } from '../version.js';
import { OtlpExport, type OtlpState } from './otlp.js';
import { SpanStore } from './span-store.js';
import { LEDGER_ROW_SPANS } from './span-writer.js';
import { Tracer } from './tracer.js';

export interface TelemetryState {
  traces: boolean;
  recorded_spans: number;
  store: { written: number; pending: number; dropped: number; last_error: string | null };
  otlp: OtlpState;
}

/** The gateway's ledger as tracing sees it: it carries plain requests' traces (ledger-trace.ts). */
export interface LedgerSide {
  /** rows written that carry a trace */
  readonly tracedWritten: number;
  /** every row recorded so far is committed */
  flushed(): Promise<boolean>;
}

export class Telemetry {
  readonly store: SpanStore;
  readonly otlp: OtlpExport;
  readonly tracer: Tracer;
  private settings: TelemetrySettings;
  private readonly ledger: LedgerSide | undefined;

  constructor(
    db: DB,
    pipeline: object,
    settings: TelemetrySettings,
    log: (line: string) => void,
    toolSource?: object,
    thread?: RecorderThread,
    /** the gateway's ledger: it carries plain requests' traces (ledger-trace.ts); they count as written spans */
    ledger?: LedgerSide,
  ) {
    this.settings = settings;
    this.store = SpanStore.forDatabase(db, () => ({ retentionHours: this.settings.retention_hours, maxSpans: this.settings.max_spans }), log, thread);
    this.otlp = new OtlpExport(VERSION, log);
    // the tracer feeds the store while settings.traces is on, the export while an endpoint is set
    this.tracer = new Tracer(pipeline, [this.otlp.record], toolSource, this.store);
    this.ledger = ledger;
    this.tracer.ledgerCarries = !!ledger;
    this.update(settings);
  }

  update(settings: TelemetrySettings): void {
    const before = this.settings;
    this.settings = settings;
    // a shorter retention or a smaller cap applies at once, not at the next prune, to everything
    // traced before the change: what the span store and the ledger still hold in memory is
    // written first (pruned before it was written, it would stay over the cap until the next
    // prune, a minute later)
    if (this.store && (settings.retention_hours < before.retention_hours || settings.max_spans < before.max_spans))
      void this.flush()
        .then(() => this.store.prune())
        .catch(() => {});
    this.otlp.update(settings);
    this.tracer.update(settings);
  }

  state(): TelemetryState {
    return {
      traces: this.settings.traces,
      recorded_spans: this.tracer.recorded,
      store: { written: this.spansWritten, pending: this.store.pending, dropped: this.store.dropped, last_error: this.store.lastError ?? null },
      otlp: this.otlp.state(),
    };
  }

  /** Everything traced so far is readable: the span store's rows and the ledger's are committed. */
  async flush(): Promise<void> {
    await Promise.all([this.store.flush(), this.ledger?.flushed()]);
  }

  /** spans committed to the local store: its rows' and the ledger rows' that carry a plain request's two */
  get spansWritten(): number {
    return this.store.written + LEDGER_ROW_SPANS * (this.ledger?.tracedWritten ?? 0);
  }

  async close(): Promise<void> {
    this.tracer.close();
    await Promise.all([this.store.close(), this.otlp.close()]);
  }
}
