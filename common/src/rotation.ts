import { createHash } from 'node:crypto';
import { normalizeSerialHex } from './serial.js';

/**
 * Each certificate's renewal point falls at a fraction of its lifetime (from issuance) in
 * [RENEW_FROM_FRACTION, RENEW_UNTIL_FRACTION), picked from its serial (renewFraction). The
 * window averages about 2/3, as before there was one; its width (15 % of the lifetime)
 * spreads a fleet enrolled or re-issued in one burst (a CA rotation, an outage) over a
 * sixth of the lifetime. Its end leaves a quarter of the lifetime for retries, and still
 * 15 % once the device SDK moved the moment by its own ±10 % (device-sdk renewal.ts).
 */
export const RENEW_FROM_FRACTION = 0.6;
export const RENEW_UNTIL_FRACTION = 0.75;

/** notBefore is backdated this much for clock skew, never by more than the lifetime (docs/reference/files.md, identity). */
export const NOT_BEFORE_BACKDATE_MS = 5 * 60_000;

/**
 * When a certificate of ours was issued, read from its validity window: notBefore is
 * backdated by min(5 min, lifetime), so issuance sits 5 minutes after notBefore, or half
 * way through the window for certificates shorter than that. Within a second (X.509 times
 * are whole seconds, RFC 5280 §4.1.2.5).
 */
export function issuedAtMs(notBeforeMs: number, notAfterMs: number): number {
  return notBeforeMs + Math.min(NOT_BEFORE_BACKDATE_MS, (notAfterMs - notBeforeMs) / 2);
}

/**
 * The fraction of the lifetime after which the certificate with this serial renews: the
 * first 32 bits of the SHA-256 of its canonical serial (normalizeSerialHex, so `0A:FF` and
 * `aff` agree) mapped onto [RENEW_FROM_FRACTION, RENEW_UNTIL_FRACTION). A hash rather than
 * the serial's own bits, so serials that are not random (imported, sequential) spread too.
 */
export function renewFraction(serialHex: string): number {
  const h = createHash('sha256').update(normalizeSerialHex(serialHex)).digest();
  return RENEW_FROM_FRACTION + (h.readUInt32BE(0) / 2 ** 32) * (RENEW_UNTIL_FRACTION - RENEW_FROM_FRACTION);
}

/**
 * Issuance + the serial's fraction of the lifetime as the operator set it (issuance to
 * notAfter), ms since the epoch: the same certificate always gets the same answer. A
 * `certTtlSeconds` 3600 renews 36 to 45 minutes after issuance. The backdating of
 * notBefore for clock skew is not counted.
 */
export function renewAfterMs(notBeforeMs: number, notAfterMs: number, serialHex: string): number {
  const issued = issuedAtMs(notBeforeMs, notAfterMs);
  return Math.floor(issued + (notAfterMs - issued) * renewFraction(serialHex));
}

/** True once `now` has reached the renewal point of a certificate. */
export function shouldRenew(nowMs: number, cert: { notBeforeMs: number; notAfterMs: number; serial: string }): boolean {
  return nowMs >= renewAfterMs(cert.notBeforeMs, cert.notAfterMs, cert.serial);
}
