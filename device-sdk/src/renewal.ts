import { issuedAtMs } from '@tlsfleet/common';

/** Fraction of the lifetime by which the renewal moment is spread either way (docs/concepts.md: with jitter). */
export const RENEWAL_JITTER = 0.1;

export interface Validity {
  notBefore: string;
  notAfter: string;
  renewAfter: string;
}

/**
 * When to renew, ms since the epoch: the service's `renewAfter` (60–75 % of the lifetime
 * after issuance, spread per certificate) brought forward uniformly by up to 10 % of the
 * lifetime, so a fleet enrolled in one burst does not renew in one burst, and never later
 * than `renewAfter`: the fleet audit counts a device past its `renewAfter` as overdue. The
 * lifetime counts from issuance, not from the backdated notBefore (common/rotation.ts).
 * Never before issuance.
 */
export function renewAtMs(validity: Validity, random: () => number = Math.random, jitter = RENEWAL_JITTER): number {
  const notAfter = Date.parse(validity.notAfter);
  const issued = issuedAtMs(Date.parse(validity.notBefore), notAfter);
  const lifetime = notAfter - issued;
  const at = Date.parse(validity.renewAfter) - random() * jitter * lifetime;
  return Math.round(Math.min(Math.max(at, issued), issued + 0.9 * lifetime));
}

export function isExpired(validity: Validity, nowMs: number): boolean {
  return nowMs >= Date.parse(validity.notAfter);
}
