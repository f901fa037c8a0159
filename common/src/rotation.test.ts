import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { issuedAtMs, NOT_BEFORE_BACKDATE_MS, RENEW_FROM_FRACTION, RENEW_UNTIL_FRACTION, renewAfterMs, renewFraction, shouldRenew } from './rotation.js';

const floorToSecond = (ms: number) => Math.floor(ms / 1000) * 1000;

/** The validity window the authority writes for a certificate issued at `now` with `ttlS` (provisioning authority.ts). */
function issuedAt(now: number, ttlS: number) {
  const ttlMs = ttlS * 1000;
  return { notBeforeMs: floorToSecond(now - Math.min(NOT_BEFORE_BACKDATE_MS, ttlMs)), notAfterMs: floorToSecond(now + ttlMs) };
}

// A fake clock: issuance at a fixed instant with a sub-second part, as a real clock has.
const NOW = Date.parse('2026-03-01T12:00:00.400Z');

/** Serials as the authority makes them: 8 to 20 random bytes, canonical hex (no leading zeros). */
const serial = fc.uint8Array({ minLength: 8, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex').replace(/^0+/, '') || '0');
const ttlSeconds = fc.integer({ min: 1, max: 365 * 86_400 });

describe('renewal point: a per-certificate fraction of the lifetime counted from issuance', () => {
  it('falls within 60-75 % of the lifetime after issuance (within a second), for any serial and lifetime', () => {
    fc.assert(
      fc.property(serial, ttlSeconds, (s, ttlS) => {
        const w = issuedAt(NOW, ttlS);
        const at = renewAfterMs(w.notBeforeMs, w.notAfterMs, s);
        expect(at).toBeGreaterThanOrEqual(NOW + ttlS * 1000 * RENEW_FROM_FRACTION - 1000);
        expect(at).toBeLessThanOrEqual(NOW + ttlS * 1000 * RENEW_UNTIL_FRACTION + 1000);
        expect(at).toBeLessThan(w.notAfterMs);
        const f = renewFraction(s);
        expect(f).toBeGreaterThanOrEqual(RENEW_FROM_FRACTION);
        expect(f).toBeLessThan(RENEW_UNTIL_FRACTION);
      }),
      { numRuns: 500 },
    );
  });

  it('is the same every time for the same certificate, however its serial is written', () => {
    fc.assert(
      fc.property(serial, ttlSeconds, fc.nat({ max: 3 }), (s, ttlS, zeros) => {
        const w = issuedAt(NOW, ttlS);
        const spelled = ('0'.repeat(zeros) + s).toUpperCase().replace(/(..)(?=.)/g, '$1:');
        expect(renewAfterMs(w.notBeforeMs, w.notAfterMs, spelled)).toBe(renewAfterMs(w.notBeforeMs, w.notAfterMs, s));
      }),
      { numRuns: 300 },
    );
  });

  it('spreads a fleet issued at one instant across the whole window', () => {
    fc.assert(
      fc.property(fc.uniqueArray(serial, { minLength: 400, maxLength: 400, selector: (s) => s }), (serials) => {
        const fractions = serials.map(renewFraction);
        // Ten bins of 1.5 % each: with 400 certificates about 40 per bin, none empty nor holding a quarter.
        const bins = new Array<number>(10).fill(0);
        for (const f of fractions) bins[Math.min(9, Math.floor(((f - RENEW_FROM_FRACTION) / (RENEW_UNTIL_FRACTION - RENEW_FROM_FRACTION)) * 10))]!++;
        expect(Math.min(...bins)).toBeGreaterThan(10);
        expect(Math.max(...bins)).toBeLessThan(100);
        // No second of a 1 h lifetime holds more than a few of them (about 0.7 each on average).
        const seconds = new Map<number, number>();
        for (const f of fractions) seconds.set(Math.floor(f * 3600), (seconds.get(Math.floor(f * 3600)) ?? 0) + 1);
        expect(Math.max(...seconds.values())).toBeLessThanOrEqual(10);
      }),
      { numRuns: 20 },
    );
  });

  it.each([
    ['1 s', 1],
    ['5 min (backdated by its whole lifetime)', 300],
    ['1 h', 3600],
    ['7 days', 7 * 86_400],
  ])('a certificate of %s renews at its own fraction of the lifetime after issuance, within a second', (_name, ttlS) => {
    const w = issuedAt(NOW, ttlS);
    const s = '5c1e0f9a3b7d2e41';
    expect(Math.abs(renewAfterMs(w.notBeforeMs, w.notAfterMs, s) - (NOW + ttlS * 1000 * renewFraction(s)))).toBeLessThanOrEqual(1000);
  });

  it('reads the issuance back from the backdated window, within a second', () => {
    for (const ttlS of [1, 2, 30, 299, 300, 301, 3600, 86_400]) {
      const w = issuedAt(NOW, ttlS);
      expect(Math.abs(issuedAtMs(w.notBeforeMs, w.notAfterMs) - NOW)).toBeLessThanOrEqual(1000);
    }
  });

  it('shouldRenew turns true at renewAfter and not a millisecond before', () => {
    const cert = { ...issuedAt(NOW, 3600), serial: 'a1b2c3d4e5f60718' };
    const at = renewAfterMs(cert.notBeforeMs, cert.notAfterMs, cert.serial);
    expect(shouldRenew(at - 1, cert)).toBe(false);
    expect(shouldRenew(at, cert)).toBe(true);
  });
});
