import { createPublicKey, KeyObject, verify, webcrypto } from 'node:crypto';
import { TlsfleetError } from '@tlsfleet/common';
import type { CsrParts } from './csr.js';

/**
 * Proof of possession (RFC 2986 §3): the CSR's signature must verify over the exact
 * certificationRequestInfo bytes with the CSR's own key. The one costly step of reading a
 * CSR, so issuance runs it after authentication and key policy (authority.ts).
 * Throws `key_rejected` when the key cannot be imported (an EC point off its curve),
 * `invalid_csr` when the signature does not verify. Returns the imported key.
 */
export async function verifyPossession(csr: CsrParts): Promise<KeyObject> {
  const publicKey = await importPublicKey(csr);
  let valid: boolean;
  try {
    valid = verify(csr.hash, csr.signedDer, publicKey, csr.signature);
  } catch {
    valid = false; // e.g. an ECDSA signature that is not a DER Ecdsa-Sig-Value
  }
  if (!valid) throw new TlsfleetError('invalid_csr', 'The certificate signing request is invalid: signature does not verify (no proof of possession).');
  return publicKey;
}

/**
 * Uncompressed P-256/P-384 points are imported raw through WebCrypto. Measured here per
 * P-256 CSR: createPublicKey on SPKI DER ~190–280 µs (OpenSSL 3.0's decoder lookup), as
 * JWK ~105–146 µs, WebCrypto raw import ~80 µs, and a raw-imported key also verifies
 * faster (import + verify 250 µs against 334 µs via JWK). All three validate the point.
 */
async function importPublicKey(csr: CsrParts): Promise<KeyObject> {
  const { key } = csr;
  try {
    // SEC 1 §2.3.3: 0x04 || X || Y is the uncompressed form; compressed points take the SPKI path.
    if (key.type === 'ec' && key.curve && key.point.length === 1 + 2 * key.curve.coordinateBytes && key.point[0] === 0x04) {
      const imported = await webcrypto.subtle.importKey('raw', key.point, { name: 'ECDSA', namedCurve: key.curve.name }, true, ['verify']);
      return KeyObject.from(imported);
    }
    return createPublicKey({ key: csr.spkiDer, format: 'der', type: 'spki' });
  } catch (cause) {
    throw new TlsfleetError('key_rejected', 'The public key is refused by policy: it cannot be imported.', { cause });
  }
}
