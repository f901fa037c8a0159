import { createPublicKey } from 'node:crypto';
import { TlsfleetError } from '@tlsfleet/common';

/**
 * Renewal needs a fresh key pair: refuses a CSR whose public key is the presented
 * certificate's. Compares the keys, not their encodings: one EC point has a compressed and
 * an uncompressed form (SEC 1 §2.3.3), and both are the same key. `KeyObject.equals`
 * compares the key values (OpenSSL's EVP_PKEY_eq). Only authenticated clients reach it,
 * so the two imports (~0.2 ms each) are not a cost an anonymous client can impose.
 */
export function requireFreshKey(csrSpkiDer: Buffer, presentedSpkiDer: Buffer): void {
  if (csrSpkiDer.equals(presentedSpkiDer) || sameKey(csrSpkiDer, presentedSpkiDer)) throw new TlsfleetError('key_rejected', 'Renewal needs a fresh key pair; this CSR reuses the current public key.');
}

function sameKey(a: Buffer, b: Buffer): boolean {
  const spki = (key: Buffer) => createPublicKey({ key, format: 'der', type: 'spki' });
  return spki(a).equals(spki(b));
}
