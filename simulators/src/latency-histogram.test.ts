import { describe, expect, it } from 'vitest';
import { bucketize, LatencyHistogram } from './latency-histogram.js';

describe('latency histogram', () => {
  it('answers percentiles of 1..1000 ms to within 0.1%', () => {
    const h = new LatencyHistogram();
    for (let ms = 1; ms <= 1000; ms++) h.record(ms);
    const p = h.percentiles();
    expect(p.count).toBe(1000);
    expect(p.p50).toBeCloseTo(500, -0.3);
    expect(p.p99).toBeCloseTo(990, -0.3);
    expect(p.max).toBeCloseTo(1000, -0.3);
  });

  it('is all zeros when empty', () => {
    expect(new LatencyHistogram().percentiles()).toEqual({ count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 });
  });

  it('buckets samples on a 1-2-5 scale starting at the first non-empty bucket', () => {
    expect(bucketize([3, 4, 9, 120])).toEqual([
      { le: 5, count: 2 },
      { le: 10, count: 1 },
      { le: 20, count: 0 },
      { le: 50, count: 0 },
      { le: 100, count: 0 },
      { le: 200, count: 1 },
      { le: 500, count: 0 },
    ]);
    expect(bucketize([])).toEqual([]);
  });
});
