import type { KeyObject } from 'node:crypto';
import { TlsfleetError } from '@tlsfleet/common';

/** Named curves accepted for device keys (OpenSSL names): P-256 and P-384 only. */
const ALLOWED_EC_CURVES: ReadonlySet<string> = new Set(['prime256v1', 'secp384r1']);

/** RSA modulus bounds in bits: 2048 is the floor (NIST SP 800-131A); 8192 caps verify cost. */
const RSA_MIN_MODULUS_BITS = 2048;
const RSA_MAX_MODULUS_BITS = 8192;

// FIPS 186-5 §A.1.1: the public exponent is odd with 2^16 < e < 2^256.
const RSA_MIN_EXPONENT = 2n ** 16n + 1n;
const RSA_MAX_EXPONENT = 2n ** 256n - 1n;

/**
 * Refuses a device public key with `key_rejected` unless it is EC P-256/P-384, RSA with a
 * 2048..8192-bit modulus and a sane public exponent, or Ed25519 (DESIGN.md, Identity).
 */
export function checkKeyPolicy(publicKey: KeyObject): void {
  if (publicKey.type !== 'public') throw rejected('not a public key');
  const details = publicKey.asymmetricKeyDetails ?? {};
  switch (publicKey.asymmetricKeyType) {
    case 'ec':
      if (!ALLOWED_EC_CURVES.has(details.namedCurve ?? '')) throw rejected(`EC curve ${details.namedCurve ?? 'unknown'} is not allowed`);
      return;
    case 'rsa': {
      const bits = details.modulusLength ?? 0;
      if (bits < RSA_MIN_MODULUS_BITS || bits > RSA_MAX_MODULUS_BITS) throw rejected(`RSA modulus of ${bits} bits is not allowed`);
      const e = details.publicExponent ?? 0n;
      if (e % 2n === 0n || e < RSA_MIN_EXPONENT || e > RSA_MAX_EXPONENT) throw rejected('RSA public exponent is not allowed');
      return;
    }
    case 'ed25519':
      return;
    default:
      throw rejected(`${publicKey.asymmetricKeyType ?? 'unknown'} keys are not allowed`);
  }
}

function rejected(reason: string): TlsfleetError {
  return new TlsfleetError('key_rejected', `The public key is refused by policy: ${reason}.`);
}
