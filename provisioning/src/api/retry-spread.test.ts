import { TlsfleetError } from '@tlsfleet/common';
import { describe, expect, it } from 'vitest';
import { IssuanceGate } from './issuance-gate.js';
import { MAX_RETRY_AFTER_S, RetrySpread } from './retry-spread.js';

/** A clock that moves only when told. */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function retryAfterOf(admit: () => unknown): number {
  try {
    admit();
  } catch (err) {
    if (err instanceof TlsfleetError && err.code === 'overloaded') return err.retryAfterSeconds ?? -1;
    throw err;
  }
  throw new Error('admitted');
}

describe('Retry-After of 503 overloaded, spread by backlog and measured rate', () => {
  it('tells each refused request of a herd to come back later than the one before, at the measured rate', () => {
    const c = clock();
    const spread = new RetrySpread({ now: c.now, random: () => 0 });
    // 50 ms an issuance on 4 places: 80 a second.
    for (let i = 0; i < 200; i++) spread.ended(50);
    expect(spread.ratePerSecond(4)).toBeCloseTo(80, 0);
    const herd = Array.from({ length: 800 }, () => spread.refuse('renew', 4, 4));
    for (let i = 1; i < herd.length; i++) expect(herd[i]!).toBeGreaterThanOrEqual(herd[i - 1]!);
    expect(herd[0]).toBe(1);
    // The 800th waits for the 4 in flight and the 799 before it: 803 / 80 per second, 10.04 s.
    expect(herd[799]).toBe(11);
    // About 80 are told each second: the herd comes back at the pace the service issues.
    const perSecond = new Map<number, number>();
    for (const s of herd) perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
    for (const [s, n] of perSecond) if (s > 1 && s < 11) expect(n).toBe(80);
  });

  it('stretches each Retry-After by up to a quarter at random, never below 1 s nor above 60 s', () => {
    const c = clock();
    const rolls = [0, 0.999];
    const spread = new RetrySpread({ now: c.now, random: () => rolls[0]! });
    for (let i = 0; i < 100; i++) spread.ended(1000);
    // 1 place, 1 s each: the 8th refused comes after 1 in flight and 7 before it, 9 s.
    const low = Array.from({ length: 8 }, () => spread.refuse('renew', 1, 1)).at(-1);
    expect(low).toBe(9);
    const high = new RetrySpread({ now: c.now, random: () => rolls[1]! });
    for (let i = 0; i < 100; i++) high.ended(1000);
    expect(Array.from({ length: 8 }, () => high.refuse('renew', 1, 1)).at(-1)).toBe(Math.ceil(9 * 1.25));
    for (let i = 0; i < 500; i++) {
      const s = spread.refuse('renew', 1, 1);
      expect(s).toBeGreaterThanOrEqual(1);
      expect(s).toBeLessThanOrEqual(MAX_RETRY_AFTER_S);
    }
  });

  it('spreads what does not fit in 60 s over 30-60 s, and lets the backlog drain as time passes', () => {
    const c = clock();
    let r = 0;
    const spread = new RetrySpread({ now: c.now, random: () => (r = (r + 0.37) % 1) });
    for (let i = 0; i < 100; i++) spread.ended(1000);
    const told = Array.from({ length: 300 }, () => spread.refuse('renew', 1, 1));
    const overflow = told.slice(60);
    expect(Math.min(...overflow)).toBeGreaterThanOrEqual(30);
    expect(Math.max(...overflow)).toBe(60);
    expect(new Set(overflow).size).toBeGreaterThan(20);
    // Two minutes later everything promised has drained: short waits again.
    c.advance(120_000);
    expect(spread.refuse('renew', 1, 1)).toBeLessThanOrEqual(3);
  });

  it('keeps enrollments and renewals in separate queues, so a refused enrollment herd does not delay renewals', () => {
    const c = clock();
    const spread = new RetrySpread({ now: c.now, random: () => 0 });
    for (let i = 0; i < 100; i++) spread.ended(100);
    for (let i = 0; i < 500; i++) spread.refuse('enroll', 3, 3);
    expect(spread.refuse('enroll', 3, 3)).toBeGreaterThan(10);
    expect(spread.refuse('renew', 4, 4)).toBe(1);
  });

  it('in the gate: measures issuance time from admission to release, and grows Retry-After with the refusals', () => {
    const c = clock();
    const gate = new IssuanceGate({ maxInFlight: 2, renewalReserve: 1, perClientRate: 0, now: c.now, random: () => 0 });
    // Issuances of 500 ms on 2 places: 4 a second.
    for (let i = 0; i < 60; i++) {
      const release = gate.admit(`device:w${i}`, 'renew');
      c.advance(500);
      release();
    }
    const a = gate.admit('device:a', 'renew');
    const b = gate.admit('device:b', 'renew');
    const told = Array.from({ length: 40 }, (_, i) => retryAfterOf(() => gate.admit(`device:h${i}`, 'renew')));
    expect(told[0]).toBe(1);
    // 2 in flight and 39 refused before it, at 4 a second: 10.5 s.
    expect(told[39]).toBe(11);
    expect(gate.lastRetryAfterSeconds).toBe(11);
    for (let i = 1; i < told.length; i++) expect(told[i]!).toBeGreaterThanOrEqual(told[i - 1]!);
    a();
    b();
    expect(gate.current).toBe(0);
  });
});
