import { describe, expect, it } from 'vitest';
import { ErrorTally } from './error-tally.js';

describe('error tally', () => {
  it('counts network trouble during a planned broker restart as expected, everything else as errors', () => {
    const t = new ErrorTally();
    expect(t.add('network', 2)).toBe(true);
    t.expect('broker restarted (expected in this scenario)');
    expect(t.add('connection_refused', 5)).toBe(false);
    expect(t.add('network', 3)).toBe(false);
    expect(t.add('revoked', 1)).toBe(true);
    t.settled();
    expect(t.add('connection_refused', 1)).toBe(true);
    expect(t.errors).toEqual({ network: 2, revoked: 1, connection_refused: 1 });
    expect(t.expected).toEqual({ connection_refused: 5, network: 3 });
    expect(t.expectedReason).toBe('broker restarted (expected in this scenario)');
    expect([t.total('errors'), t.total('expected')]).toEqual([4, 8]);
  });

  it('names no reason when nothing was expected', () => {
    const t = new ErrorTally();
    t.expect('broker restarted (expected in this scenario)');
    t.settled();
    expect(t.expectedReason).toBeUndefined();
  });
});
