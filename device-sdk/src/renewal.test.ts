import { describe, expect, it } from 'vitest';
import { isExpired, renewAtMs } from './renewal.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const validity = (lifetimeS: number) => ({
  notBefore: new Date(T0).toISOString(),
  notAfter: new Date(T0 + lifetimeS * 1000).toISOString(),
  renewAfter: new Date(T0 + (lifetimeS * 1000 * 2) / 3).toISOString(),
});

describe('when to renew', () => {
  it.each([
    [0.5, 'renewAfter itself', T0 + 20_000],
    [0, '10% of the lifetime earlier', T0 + 20_000 - 3000],
    [1, '10% of the lifetime later', T0 + 20_000 + 3000],
  ])('with random %s it renews at %s', (r, _label, expected) => {
    expect(renewAtMs(validity(30), () => r)).toBe(expected);
  });

  it('keeps a 7-day certificate renewal within ±10% of its lifetime around 2/3', () => {
    const v = validity(7 * 86400);
    for (const r of [0, 0.25, 0.75, 0.999]) {
      const at = renewAtMs(v, () => r);
      expect(at).toBeGreaterThanOrEqual(T0 + 7 * 86400_000 * (2 / 3 - 0.1));
      expect(at).toBeLessThanOrEqual(T0 + 7 * 86400_000 * (2 / 3 + 0.1));
    }
  });

  it('never schedules past 90% of the lifetime, whatever the service said', () => {
    const v = { ...validity(30), renewAfter: new Date(T0 + 29_000).toISOString() };
    expect(renewAtMs(v, () => 1)).toBe(T0 + 27_000);
  });

  it('knows a certificate is expired from notAfter on', () => {
    expect(isExpired(validity(30), T0 + 29_999)).toBe(false);
    expect(isExpired(validity(30), T0 + 30_000)).toBe(true);
  });
});
