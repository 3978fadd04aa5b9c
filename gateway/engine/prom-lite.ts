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

const SEP = '\u0001';

abstract class Lite<L extends string, S> {
  readonly aggregator = 'sum' as const;
  protected readonly series = new Map<string, { labels: Labels<L>; s: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
  ) {}

  protected entry(labels: Labels<L>, make: () => S): S {
    const names = this.labelNames;
    let key = '';
    for (let i = 0; i < names.length; i++) key += (i ? SEP : '') + labels[names[i]!];
    let e = this.series.get(key);
    if (!e) {
      // a copy in label-name order: the exposition lists labels in that order
      const copy = {} as Record<L, string>;
      for (const n of names) copy[n] = String(labels[n] ?? '');
      e = { labels: copy, s: make() };
      this.series.set(key, e);
    }
    return e.s;
  }

  reset(): void {
    this.series.clear();
  }

  /** Register with a prom-client Registry (which reads name, help, type and get()). */
  registerIn(registry: { registerMetric(m: Metric): void }): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

export class LiteCounter<L extends string> extends Lite<L, { v: number }> {
  readonly type = 'counter';

  inc(labels: Labels<L>, n = 1): void {
    if (!(n >= 0) || !Number.isFinite(n)) throw new TypeError(`counter ${this.name}: cannot add ${n}`);
    this.entry(labels, () => ({ v: 0 })).v += n;
  }

  get(): Promise<Exposition> {
    const values: Value[] = [];
    for (const { labels, s } of this.series.values()) values.push({ labels: { ...labels }, value: s.v });
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

  observe(labels: Labels<L>, v: number): void {
    if (!Number.isFinite(v)) throw new TypeError(`histogram ${this.name}: cannot observe ${v}`);
    const b = this.bounds;
    const s = this.entry(labels, () => ({ counts: new Float64Array(b.length), sum: 0, count: 0 }));
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    if (i < b.length) s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  get(): Promise<Exposition> {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, s } of this.series.values()) {
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
