// Load generation with autocannon's programmatic API. Latency percentiles come from every
// response's own duration (autocannon measures it with process.hrtime, in fractional ms), because
// autocannon's histogram records whole milliseconds, too coarse for a 0.3 ms budget.
import autocannon from 'autocannon';

export interface LoadSpec {
  url: string;
  headers: Record<string, string>;
  body: string;
  connections: number;
  seconds: number;
}

export interface LoadResult {
  /** 2xx responses completed */
  requests: number;
  seconds: number;
  rps: number;
  /** ms, from the per-response durations */
  p50: number;
  p99: number;
  mean: number;
  /** autocannon's own (integer ms) percentiles, for reference */
  acP50: number;
  acP99: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  let lat = new Float64Array(1 << 16);
  let n = 0;
  let sum = 0;
  return new Promise((resolve, reject) => {
    const inst = autocannon(
      {
        url: spec.url,
        method: 'POST',
        headers: spec.headers,
        body: spec.body,
        connections: spec.connections,
        duration: spec.seconds,
        pipelining: 1,
        timeout: 10,
      },
      (err, r) => {
        if (err) return reject(err);
        const sorted = lat.subarray(0, n).sort();
        const statusCodes: Record<string, number> = {};
        for (const [code, v] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = v.count;
        resolve({
          requests: n,
          seconds: r.duration,
          rps: n / r.duration,
          p50: percentile(sorted, 50),
          p99: percentile(sorted, 99),
          mean: n ? sum / n : NaN,
          acP50: r.latency.p50,
          acP99: r.latency.p99,
          non2xx: r.non2xx,
          errors: r.errors,
          timeouts: r.timeouts,
          statusCodes,
        });
      },
    );
    inst.on('response', (_client: unknown, statusCode: number, _bytes: number, ms: number) => {
      if (statusCode < 200 || statusCode >= 300) return;
      if (n === lat.length) {
        const bigger = new Float64Array(lat.length * 2);
        bigger.set(lat);
        lat = bigger;
      }
      lat[n++] = ms;
      sum += ms;
    });
  });
}
