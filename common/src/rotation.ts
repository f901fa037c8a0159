/** Renew when this fraction of the lifetime has passed (docs/concepts.md: about 2/3). */
export const RENEW_AT_FRACTION = 2 / 3;

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
 * Issuance + 2/3 of the lifetime as the operator set it (issuance to notAfter), ms since
 * the epoch: `certTtlSeconds` 3600 renews 40 minutes after issuance, 30 s after 20 s.
 * The backdating of notBefore for clock skew is not counted.
 */
export function renewAfterMs(notBeforeMs: number, notAfterMs: number): number {
  const issued = issuedAtMs(notBeforeMs, notAfterMs);
  return Math.floor(issued + (notAfterMs - issued) * RENEW_AT_FRACTION);
}

/** True once `now` has reached the renewal point of a certificate's validity window. */
export function shouldRenew(nowMs: number, validity: { notBeforeMs: number; notAfterMs: number }): boolean {
  return nowMs >= renewAfterMs(validity.notBeforeMs, validity.notAfterMs);
}
