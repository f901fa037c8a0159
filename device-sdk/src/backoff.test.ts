import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.js';

describe('capped exponential backoff with full jitter', () => {
  it('doubles the ceiling per failure up to the cap', () => {
    const b = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000, random: () => 0.999999 });
    const delays = Array.from({ length: 7 }, () => b.next());
    expect(delays).toEqual([99, 199, 399, 799, 999, 999, 999]);
  });

  it('draws each delay uniformly from zero to the ceiling', () => {
    const b = new Backoff({ initialDelayMs: 1000, maxDelayMs: 1000, random: () => 0 });
    expect(b.next()).toBe(0);
    const c = new Backoff({ initialDelayMs: 1000, maxDelayMs: 8000, random: () => 0.5 });
    expect([c.next(), c.next(), c.next()]).toEqual([500, 1000, 2000]);
  });

  it('starts from the initial ceiling again after a reset', () => {
    const b = new Backoff({ initialDelayMs: 100, maxDelayMs: 10_000, random: () => 0.5 });
    b.next();
    b.next();
    b.next();
    b.reset();
    expect(b.failures).toBe(0);
    expect(b.next()).toBe(50);
  });

  it('stays finite after very many failures', () => {
    const b = new Backoff({ initialDelayMs: 1, maxDelayMs: 60_000, random: () => 0.5 });
    for (let i = 0; i < 5000; i++) b.next();
    expect(b.next()).toBe(30_000);
  });

  it('spreads a herd: 1000 clients at the third failure cover the whole window', () => {
    const delays = Array.from({ length: 1000 }, () => {
      const b = new Backoff({ initialDelayMs: 1000, maxDelayMs: 60_000 });
      b.next();
      b.next();
      return b.next();
    });
    expect(Math.min(...delays)).toBeLessThan(400);
    expect(Math.max(...delays)).toBeGreaterThan(3600);
  });

  it.each([
    [0, 1000],
    [2000, 1000],
    [Number.NaN, 1000],
  ])('refuses initial %s with max %s', (initialDelayMs, maxDelayMs) => {
    expect(() => new Backoff({ initialDelayMs, maxDelayMs })).toThrow(RangeError);
  });
});
