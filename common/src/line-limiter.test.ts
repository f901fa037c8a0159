import { describe, expect, it } from 'vitest';
import { LineLimiter, lineLimiterOf } from './line-limiter.js';

describe('LineLimiter', () => {
  it('admits the first lines of a key each second and reports the dropped ones with the next', () => {
    let now = 0;
    const limiter = new LineLimiter(2, () => now);
    expect([limiter.admit('a'), limiter.admit('a'), limiter.admit('a'), limiter.admit('a'), limiter.admit('b')]).toEqual([0, 0, undefined, undefined, 0]);
    now = 999;
    expect(limiter.admit('a')).toBeUndefined();
    now = 1000;
    expect(limiter.admit('a')).toBe(3);
    expect(limiter.admit('a')).toBe(0);
  });

  it('is one limiter per owner', () => {
    const owner = {};
    expect(lineLimiterOf(owner)).toBe(lineLimiterOf(owner));
    expect(lineLimiterOf(owner)).not.toBe(lineLimiterOf({}));
  });
});
