import { KeyObject } from 'node:crypto';
import { TlsfleetError } from '@tlsfleet/common';
import type { SpkiKey } from './csr.js';

/** RSA modulus bounds in bits: 2048 is the floor (NIST SP 800-131A); 8192 caps verify cost. */
const RSA_MIN_MODULUS_BITS = 2048;
const RSA_MAX_MODULUS_BITS = 8192;

// FIPS 186-5 §A.1.1 asks for an odd e with 2^16 < e < 2^256; we cap at 2^32 because the
// cost of an RSA verification grows with the exponent's length (issue 19: an exponent near
// the modulus' size cost 12–20 ms per CSR), and every real key uses 65537.
const RSA_MIN_EXPONENT = 2n ** 16n + 1n;
const RSA_MAX_EXPONENT = 2n ** 32n;

/** What policy judges: the key type and its size, exponent or curve. */
type KeyFacts =
  | { readonly type: 'ec'; readonly curve: string }
  | { readonly type: 'rsa'; readonly modulusBits: number; readonly exponent: bigint }
  | { readonly type: 'ed25519' }
  | { readonly type: 'other'; readonly name: string };

/** EC P-256 and P-384 only, by OpenSSL name (KeyObject) or by the name readCsr gives. */
const ALLOWED_EC_CURVES: ReadonlyMap<string, string> = new Map([
  ['prime256v1', 'P-256'],
  ['secp384r1', 'P-384'],
  ['P-256', 'P-256'],
  ['P-384', 'P-384'],
]);

/**
 * Refuses a device public key with `key_rejected` unless it is EC P-256/P-384, RSA with a
 * 2048..8192-bit modulus and an odd public exponent from 2^16+1 to 2^32, or Ed25519
 * (docs/reference/files.md, identity). Takes an imported key or, before any import or signature
 * verification, the key as a CSR's SubjectPublicKeyInfo states it (readCsr).
 */
export function checkKeyPolicy(key: KeyObject | SpkiKey): void {
  const facts = key instanceof KeyObject ? factsOfKeyObject(key) : factsOfSpki(key);
  switch (facts.type) {
    case 'ec':
      if (!ALLOWED_EC_CURVES.has(facts.curve)) throw rejected(`EC curve ${facts.curve} is not allowed`);
      return;
    case 'rsa': {
      const { modulusBits: bits, exponent: e } = facts;
      if (bits < RSA_MIN_MODULUS_BITS || bits > RSA_MAX_MODULUS_BITS) throw rejected(`RSA modulus of ${bits} bits is not allowed`);
      if (e % 2n === 0n || e < RSA_MIN_EXPONENT || e > RSA_MAX_EXPONENT) throw rejected('RSA public exponent is not allowed (odd, 2^16+1 to 2^32)');
      return;
    }
    case 'ed25519':
      return;
    default:
      throw rejected(`${facts.name} keys are not allowed`);
  }
}

function factsOfKeyObject(publicKey: KeyObject): KeyFacts {
  if (publicKey.type !== 'public') return { type: 'other', name: 'private or secret' };
  const details = publicKey.asymmetricKeyDetails ?? {};
  switch (publicKey.asymmetricKeyType) {
    case 'ec':
      return { type: 'ec', curve: details.namedCurve ?? 'unknown' };
    case 'rsa':
      return { type: 'rsa', modulusBits: details.modulusLength ?? 0, exponent: details.publicExponent ?? 0n };
    case 'ed25519':
      return { type: 'ed25519' };
    default:
      return { type: 'other', name: publicKey.asymmetricKeyType ?? 'unknown' };
  }
}

function factsOfSpki(key: SpkiKey): KeyFacts {
  if (key.type !== 'ec') return key;
  return { type: 'ec', curve: key.curve?.name ?? `OID ${key.curveOid}` };
}

function rejected(reason: string): TlsfleetError {
  return new TlsfleetError('key_rejected', `The public key is refused by policy: ${reason}.`);
}
