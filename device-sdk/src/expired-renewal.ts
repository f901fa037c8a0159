import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { pemToDer } from '@tlsfleet/common';
import type { DeviceIdentity } from './credential-store.js';
import { createCsr } from './csr.js';
import { ProvisioningClient } from './enrollment-client.js';
import type { RenewalKey } from './renewal-key.js';

/**
 * Renews a certificate that has already expired, at POST /v1/renew-expired (the service
 * must allow it with `--renew-expired-within`). The new key comes from `renewalKey` (stored
 * before use, so a lost answer is replayed); the proof is the CSR's DER signed by the expired
 * key. Throws the service's typed error on refusal (`not_found` when it does not allow it).
 */
export async function renewAfterExpiry(expired: DeviceIdentity, renewalKey: RenewalKey): Promise<DeviceIdentity> {
  const key = await renewalKey.for(expired.serial);
  const csrPem = createCsr(key, expired.deviceId);
  const proof = proofOf(pemToDer(csrPem, 'CERTIFICATE REQUEST')!, createPrivateKey(expired.privateKeyPem));
  const renewed = await new ProvisioningClient(expired.provisioningUrl).renewExpired(csrPem, proof, key, expired);
  renewalKey.forget();
  return renewed;
}

/** The service's rule: ECDSA P-256 with SHA-256, P-384 with SHA-384, RSA PKCS#1 v1.5 with SHA-256, Ed25519 plain; base64. */
export function proofOf(csrDer: Buffer, oldKey: KeyObject): string {
  const digest = oldKey.asymmetricKeyType === 'ed25519' ? null : oldKey.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'sha384' : 'sha256';
  return sign(digest, csrDer, oldKey).toString('base64');
}
