import { describe, expect, it } from 'vitest';
import { isExpired, renewAtMs } from './renewal.js';

// A fake clock: issued at T0, with notBefore backdated as the service does (5 min, never more than the lifetime).
const T0 = Date.parse('2026-01-01T00:00:00Z');
const validity = (lifetimeS: number) => ({
  notBefore: new Date(T0 - Math.min(300, lifetimeS) * 1000).toISOString(),
  notAfter: new Date(T0 + lifetimeS * 1000).toISOString(),
  renewAfter: new Date(T0 + (lifetimeS * 1000 * 2) / 3).toISOString(),
});

describe('when to renew', () => {
  it.each([
    [0, 'renewAfter itself', T0 + 20_000],
    [0.5, '5% of the lifetime earlier', T0 + 20_000 - 1500],
    [0.999999, 'almost 10% of the lifetime earlier', T0 + 20_000 - 3000],
  ])('a 30 s certificate with random %s renews at %s (the backdated 30 s not counted)', (r, _label, expected) => {
    expect(renewAtMs(validity(30), () => r)).toBe(expected);
  });

  it('a 1 h certificate renews at most 6 minutes before its renewAfter', () => {
    const v = validity(3600);
    expect(renewAtMs(v, () => 0)).toBe(T0 + 40 * 60_000);
    expect(renewAtMs(v, () => 0.5)).toBe(T0 + 37 * 60_000);
    expect(renewAtMs(v, () => 1)).toBe(T0 + 34 * 60_000);
  });

  it('never renews after renewAfter, and at most 10% of the lifetime before it', () => {
    const v = validity(7 * 86400);
    for (const r of [0, 0.25, 0.75, 0.999]) {
      const at = renewAtMs(v, () => r);
      expect(at).toBeGreaterThanOrEqual(Date.parse(v.renewAfter) - 7 * 86400_000 * 0.1);
      expect(at).toBeLessThanOrEqual(Date.parse(v.renewAfter));
    }
  });

  it('never schedules past 90% of the lifetime, whatever the service said', () => {
    const v = { ...validity(30), renewAfter: new Date(T0 + 29_000).toISOString() };
    expect(renewAtMs(v, () => 0)).toBe(T0 + 27_000);
  });

  it('never schedules before issuance, whatever the service said', () => {
    const v = { ...validity(30), renewAfter: new Date(T0 - 20_000).toISOString() };
    expect(renewAtMs(v, () => 0)).toBe(T0);
  });

  it('knows a certificate is expired from notAfter on', () => {
    expect(isExpired(validity(30), T0 + 29_999)).toBe(false);
    expect(isExpired(validity(30), T0 + 30_000)).toBe(true);
  });
});
