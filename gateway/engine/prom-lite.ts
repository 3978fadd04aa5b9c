// Counters and histograms for the request path, exposed through prom-client's Registry. prom-client's
// own Counter.inc and Histogram.observe validate the label object and build a closure on every call
// (~0.7-1 µs each, seven per request: bench/RESULTS.md); here a call is one key built from the label
// values and one Map lookup, and the exposition is built only when the registry is scraped.
// Same call signature as prom-client (`inc(labels, n)`, `observe(labels, v)`), same exposition.
import type { Metric, MetricType } from 'prom-client';

type Labels<L extends string> = Readonly<Record<L, string>>;

interface Value {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** What the registry reads from a metric when it is scraped (prom-client's MetricObjectWithValues). */
interface Exposition {
  name: string;
  help: string;
  type: MetricType | string;
  aggregator: 'sum';
  values: Value[];
}

/** a label's value as the exposition shows it (a missing one is empty) */
const labelValue = (v: string | number | undefined): string => (typeof v === 'string' ? v : v === undefined ? '' : String(v));

/** one level of the series tree: a label's value → the next level, or the series at the last */
type Level<S> = Map<string, Level<S> | S>;

abstract class Lite<L extends string, S> {
  readonly aggregator = 'sum' as const;
  /** every series, in the order they first appeared (the exposition's order) */
  protected readonly series: { labels: Labels<L>; s: S }[] = [];
  /** the series by their label values, one Map level per label name: a lookup is one Map.get per
   * label of strings whose hashes V8 keeps (the model, team and endpoint names are the
   * snapshot's strings), no key string built and hashed per update */
  private root: Level<{ labels: Labels<L>; s: S }> = new Map();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
  ) {}

  /** a new series' state */
  protected abstract fresh(): S;

  protected entry(labels: Labels<L>): S {
    const names = this.labelNames;
    const last = names.length - 1;
    let level = this.root;
    for (let i = 0; i < last; i++) {
      const v = labelValue(labels[names[i]!]);
      let next = level.get(v) as typeof level | undefined;
      if (!next) level.set(v, (next = new Map()));
      level = next;
    }
    const v = last < 0 ? '' : labelValue(labels[names[last]!]);
    let e = level.get(v) as { labels: Labels<L>; s: S } | undefined;
    if (!e) {
      // a copy in label-name order: the exposition lists labels in that order
      const copy = {} as Record<L, string>;
      for (const n of names) copy[n] = labelValue(labels[n]);
      e = { labels: copy, s: this.fresh() };
      level.set(v, e);
      this.series.push(e);
    }
    return e.s;
  }

  reset(): void {
    this.series.length = 0;
    this.root = new Map();
  }

  /** Register with a prom-client Registry (which reads name, help, type and get()). */
  registerIn(registry: { registerMetric(m: Metric): void }): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

export class LiteCounter<L extends string> extends Lite<L, { v: number }> {
  readonly type = 'counter';

  protected fresh(): { v: number } {
    return { v: 0 };
  }

  inc(labels: Labels<L>, n = 1): void {
    if (!(n >= 0) || !Number.isFinite(n)) throw new TypeError(`counter ${this.name}: cannot add ${n}`);
    this.entry(labels).v += n;
  }

  get(): Promise<Exposition> {
    const values: Value[] = [];
    for (const { labels, s } of this.series) values.push({ labels: { ...labels }, value: s.v });
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}

export class LiteHistogram<L extends string> extends Lite<L, { counts: Float64Array; sum: number; count: number }> {
  readonly type = 'histogram';
  private readonly bounds: readonly number[];

  constructor(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]) {
    super(name, help, labelNames);
    this.bounds = [...buckets].sort((a, b) => a - b);
  }

  protected fresh(): { counts: Float64Array; sum: number; count: number } {
    return { counts: new Float64Array(this.bounds.length), sum: 0, count: 0 };
  }

  observe(labels: Labels<L>, v: number): void {
    if (!Number.isFinite(v)) throw new TypeError(`histogram ${this.name}: cannot observe ${v}`);
    const b = this.bounds;
    const s = this.entry(labels);
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    if (i < b.length) s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  get(): Promise<Exposition> {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, s } of this.series) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { le: this.bounds[i]!, ...labels }, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf', ...labels }, value: s.count, metricName: bucket });
      values.push({ labels: { ...labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}
