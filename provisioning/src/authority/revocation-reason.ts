import { TlsfleetError } from '@tlsfleet/common';
import type { RevocationReason } from '../storage/store.js';

/** RFC 5280 §5.3.1 CRLReason codes of the reasons this service records. */
export const REVOCATION_REASON_CODES: Readonly<Record<RevocationReason, number>> = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  privilegeWithdrawn: 9,
  aACompromise: 10,
};

/**
 * The reason an admin asked for; absent means `unspecified`. `certificateHold` is refused:
 * a hold is a revocation that may be lifted, and the broker closes sessions on the first CRL
 * that lists a serial, so a lifted hold would have cut devices off for nothing; and
 * `removeFromCRL` belongs to delta CRLs only (RFC 5280 §5.3.1), which we do not issue.
 */
export function parseRevocationReason(value: unknown): RevocationReason {
  if (value === undefined || value === null) return 'unspecified';
  if (typeof value === 'string' && Object.hasOwn(REVOCATION_REASON_CODES, value)) return value as RevocationReason;
  if (value === 'certificateHold' || value === 'removeFromCRL') {
    throw new TlsfleetError('invalid_request', `reason ${value} is not supported: revocation here is final (no certificate hold, no delta CRLs).`);
  }
  throw new TlsfleetError('invalid_request', `reason must be one of the RFC 5280 §5.3.1 names: ${Object.keys(REVOCATION_REASON_CODES).join(', ')}.`);
}

/** RFC 5280 §4.1.2.2: at most 20 octets, so 40 hex digits once leading zeros are dropped. */
const MAX_SERIAL_HEX = 40;

/**
 * A serial as an admin types it: hex in any case, leading zeros optional, optionally as the
 * colon-separated octets `openssl x509 -text` prints. Returns the stored form
 * (normalizeSerialHex), or throws `invalid_request`.
 */
export function parseSerialHex(value: string): string {
  if (value.length > 3 * 64 || !/^(?:[0-9a-f]+|[0-9a-f]{1,2}(?::[0-9a-f]{2})+)$/i.test(value)) {
    throw new TlsfleetError('invalid_request', 'The serial must be hexadecimal (e.g. 4a3f…, or 4A:3F:… as openssl prints it).');
  }
  const hex = value.replace(/:/g, '').toLowerCase().replace(/^0+/, '') || '0';
  if (hex.length > MAX_SERIAL_HEX) throw new TlsfleetError('invalid_request', 'The serial is longer than 20 octets (RFC 5280 §4.1.2.2).');
  return hex;
}
