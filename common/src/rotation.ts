/** Renew when this fraction of the lifetime has passed (DESIGN.md: about 2/3). */
export const RENEW_AT_FRACTION = 2 / 3;

/** notBefore + 2/3 of the lifetime, in ms since the epoch. */
export function renewAfterMs(notBeforeMs: number, notAfterMs: number): number {
  return notBeforeMs + Math.floor((notAfterMs - notBeforeMs) * RENEW_AT_FRACTION);
}

/** True once `now` has reached the renewal point of a certificate's validity window. */
export function shouldRenew(nowMs: number, validity: { notBeforeMs: number; notAfterMs: number }): boolean {
  return nowMs >= renewAfterMs(validity.notBeforeMs, validity.notAfterMs);
}
