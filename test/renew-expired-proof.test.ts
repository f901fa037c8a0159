import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { TlsfleetError } from '@tlsfleet/common';
import { describe, expect, it } from 'vitest';
import { verifyProof } from '../provisioning/src/enrollment/expired-renewal.js';
import { proofOf } from '../device-sdk/src/expired-renewal.js';

// The proof rule of POST /v1/renew-expired, one per key type, as the SDK makes it and the service checks it.
const KEYS: Record<string, () => { privateKey: KeyObject; publicKey: KeyObject }> = {
  'P-256': () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }),
  'P-384': () => generateKeyPairSync('ec', { namedCurve: 'secp384r1' }),
  'RSA-2048': () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  Ed25519: () => generateKeyPairSync('ed25519'),
};

describe('the renewal-after-expiry proof', () => {
  const csrDer = Buffer.from('3082010a0201003000', 'hex');
  for (const [name, make] of Object.entries(KEYS)) {
    it(`${name}: the SDK's proof verifies; another key's, another message's or a cut one does not`, () => {
      const { privateKey, publicKey } = make();
      const proof = Buffer.from(proofOf(csrDer, privateKey), 'base64');
      expect(() => verifyProof(publicKey, csrDer, proof)).not.toThrow();
      const refused = (fn: () => void) => {
        try {
          fn();
        } catch (err) {
          return (err as TlsfleetError).code;
        }
        return 'accepted';
      };
      expect(refused(() => verifyProof(make().publicKey, csrDer, proof))).toBe('forbidden');
      expect(refused(() => verifyProof(publicKey, Buffer.concat([csrDer, Buffer.of(0)]), proof))).toBe('forbidden');
      expect(refused(() => verifyProof(publicKey, csrDer, proof.subarray(0, proof.length - 1)))).toBe('forbidden');
    });
  }

  it('P-384 takes SHA-384, not SHA-256', async () => {
    const { sign } = await import('node:crypto');
    const { privateKey, publicKey } = KEYS['P-384']!();
    expect(() => verifyProof(publicKey, csrDer, sign('sha256', csrDer, privateKey))).toThrow(TlsfleetError);
    expect(() => verifyProof(publicKey, csrDer, sign('sha384', csrDer, privateKey))).not.toThrow();
  });
});
