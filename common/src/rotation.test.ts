import { describe, expect, it } from 'vitest';
import { issuedAtMs, NOT_BEFORE_BACKDATE_MS, renewAfterMs, shouldRenew } from './rotation.js';

const floorToSecond = (ms: number) => Math.floor(ms / 1000) * 1000;

/** The validity window the authority writes for a certificate issued at `now` with `ttlS` (provisioning authority.ts). */
function issuedAt(now: number, ttlS: number) {
  const ttlMs = ttlS * 1000;
  return { notBeforeMs: floorToSecond(now - Math.min(NOT_BEFORE_BACKDATE_MS, ttlMs)), notAfterMs: floorToSecond(now + ttlMs) };
}

// A fake clock: issuance at a fixed instant with a sub-second part, as a real clock has.
const NOW = Date.parse('2026-03-01T12:00:00.400Z');

describe('renewal at 2/3 of the lifetime counted from issuance', () => {
  it.each([
    ['1 s', 1, 667],
    ['30 s', 30, 20_000],
    ['5 min (backdated by its whole lifetime)', 300, 200_000],
    ['1 h: 40 minutes', 3600, 40 * 60_000],
    ['7 days', 7 * 86_400, (7 * 86_400_000 * 2) / 3],
  ])('a certificate of %s renews that long after issuance, within a second', (_name, ttlS, after) => {
    const w = issuedAt(NOW, ttlS);
    expect(Math.abs(renewAfterMs(w.notBeforeMs, w.notAfterMs) - (NOW + after))).toBeLessThanOrEqual(1000);
  });

  it('reads the issuance back from the backdated window, within a second', () => {
    for (const ttlS of [1, 2, 30, 299, 300, 301, 3600, 86_400]) {
      const w = issuedAt(NOW, ttlS);
      expect(Math.abs(issuedAtMs(w.notBeforeMs, w.notAfterMs) - NOW)).toBeLessThanOrEqual(1000);
    }
  });

  it('shouldRenew turns true at renewAfter and not a millisecond before', () => {
    const w = issuedAt(NOW, 3600);
    const at = renewAfterMs(w.notBeforeMs, w.notAfterMs);
    expect(shouldRenew(at - 1, w)).toBe(false);
    expect(shouldRenew(at, w)).toBe(true);
  });
});
