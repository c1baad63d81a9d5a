// Request outcomes of one data plane counted in plain numbers on the hot path, and added to
// `secbeat_requests_total` and `secbeat_latency_seconds` in one go when flushed (before every scrape, and
// at drain). prom-client validates and hashes the label set on every inc() and observe(): at one of each
// per request that was 2.6 % of an L7 thread's CPU (bench/l7 profile), for numbers read every 15 s or so.
import { LATENCY_BUCKETS_S, type Metrics } from './metrics.ts';

/** The parts of prom-client's Histogram the flush writes to (lib/histogram.js, prom-client 15, pinned in package.json). */
interface HistogramSeries {
  labels: Record<string, string>;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

export class RequestTally {
  readonly #metrics: Metrics;
  readonly #mode: string;
  /** By status / 100: index 1 = 1xx … 5 = 5xx. */
  readonly #byClass = new Float64Array(6);
  /** Per latency bucket (not cumulative, as prom-client keeps them); past the last bound counts only in #count. */
  readonly #buckets = new Float64Array(LATENCY_BUCKETS_S.length);
  #sum = 0;
  #count = 0;

  constructor(metrics: Metrics, mode: string) {
    this.#metrics = metrics;
    this.#mode = mode;
  }

  /** A request answered with `status`; `seconds` from its start to its response head. */
  record(status: number, seconds: number): void {
    this.count(status);
    this.#sum += seconds;
    this.#count++;
    for (let i = 0; i < LATENCY_BUCKETS_S.length; i++) {
      if (seconds <= LATENCY_BUCKETS_S[i]!) {
        this.#buckets[i]!++;
        break;
      }
    }
  }

  /** A request answered with no latency to report (refused before it had a start). */
  count(status: number): void {
    this.#byClass[Math.min(5, Math.max(1, Math.floor(status / 100)))]!++;
  }

  flush(): void {
    for (let c = 1; c <= 5; c++) {
      if (this.#byClass[c] === 0) continue;
      this.#metrics.requests.inc({ mode: this.#mode, status_class: `${c}xx` }, this.#byClass[c]);
      this.#byClass[c] = 0;
    }
    if (this.#count === 0) return;
    const series = this.#series();
    for (let i = 0; i < LATENCY_BUCKETS_S.length; i++) series.bucketValues[LATENCY_BUCKETS_S[i]!]! += this.#buckets[i]!;
    series.sum += this.#sum;
    series.count += this.#count;
    this.#buckets.fill(0);
    this.#sum = 0;
    this.#count = 0;
  }

  /** The histogram's series for this mode, created through the public API (zero()) the first time. */
  #series(): HistogramSeries {
    const histogram = this.#metrics.latency;
    const find = (): HistogramSeries | undefined =>
      Object.values((histogram as unknown as { hashMap: Record<string, HistogramSeries> }).hashMap).find((s) => s.labels['mode'] === this.#mode);
    let series = find();
    if (series === undefined) {
      histogram.zero({ mode: this.#mode });
      series = find();
    }
    if (series === undefined) throw new Error('prom-client histogram internals changed: no series after zero()');
    return series;
  }
}
