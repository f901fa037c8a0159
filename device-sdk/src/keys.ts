import { generateKeyPair, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generate = promisify(generateKeyPair);

/** P-256 is the default: small, fast, and what every broker and TLS stack speaks. */
export type KeyAlgorithm = 'P-256' | 'P-384' | 'RSA-2048';
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['P-256', 'P-384', 'RSA-2048'];

export interface DeviceKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** PKCS#8 PEM; the only form in which the private key is ever stored. */
  privateKeyPem: string;
}

/** Generates a key pair on the device; the private key never leaves it. */
export async function generateDeviceKey(algorithm: KeyAlgorithm = 'P-256'): Promise<DeviceKey> {
  const { privateKey, publicKey } =
    algorithm === 'RSA-2048'
      ? await generate('rsa', { modulusLength: 2048, publicExponent: 0x10001 })
      : await generate('ec', { namedCurve: algorithm === 'P-256' ? 'prime256v1' : 'secp384r1' });
  return { privateKey, publicKey, privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/** A stored PKCS#8 PEM back into a key pair. Throws on anything else. */
export function loadDeviceKey(privateKeyPem: string): DeviceKey {
  const privateKey = createPrivateKey({ key: privateKeyPem, format: 'pem' });
  return { privateKey, publicKey: createPublicKey(privateKey), privateKeyPem };
}
