import * as hdr from 'hdr-histogram-js';
import type { HistogramBucket, Percentiles } from './report/fleet-summary.js';

/**
 * Latencies in ms, recorded in µs into an HDR histogram (3 significant digits, up to an
 * hour), so percentiles stay exact to 0.1% however many samples a run takes.
 */
export class LatencyHistogram {
  private readonly h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });

  record(ms: number): void {
    this.h.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  get count(): number {
    return this.h.totalCount;
  }

  percentile(p: number): number {
    return this.h.getValueAtPercentile(p) / 1000;
  }

  percentiles(): Percentiles {
    if (this.count === 0) return { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
    return { count: this.count, p50: this.percentile(50), p90: this.percentile(90), p99: this.percentile(99), p999: this.percentile(99.9), max: this.h.maxValue / 1000 };
  }

  reset(): void {
    this.h.reset();
  }
}

/** Samples (ms) into buckets on a 1-2-5 scale from 1 ms, for the report's histograms. */
export function bucketize(samples: number[]): HistogramBucket[] {
  if (samples.length === 0) return [];
  const max = Math.max(...samples);
  const bounds: number[] = [];
  for (let decade = 1; bounds.length === 0 || bounds[bounds.length - 1]! < max; decade *= 10) bounds.push(decade, 2 * decade, 5 * decade);
  const counts = bounds.map(() => 0);
  for (const s of samples) counts[bounds.findIndex((b) => s <= b)]!++;
  const first = counts.findIndex((c) => c > 0);
  return bounds.map((le, i) => ({ le, count: counts[i]! })).slice(Math.max(0, first));
}
