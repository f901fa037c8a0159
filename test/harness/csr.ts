import 'reflect-metadata';
import { createPublicKey, generateKeyPairSync, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export type KeyKind = 'P-256' | 'P-384' | 'rsa2048' | 'rsa1024';

export interface TestKey {
  privateKey: KeyObject;
  privatePem: string;
}

export function newKey(kind: KeyKind = 'P-256'): TestKey {
  const pair =
    kind === 'rsa2048' || kind === 'rsa1024'
      ? generateKeyPairSync('rsa', { modulusLength: kind === 'rsa2048' ? 2048 : 1024 })
      : generateKeyPairSync('ec', { namedCurve: kind === 'P-256' ? 'prime256v1' : 'secp384r1' });
  return { privateKey: pair.privateKey, privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/**
 * A PKCS#10 request signed by `key`, PEM. `subject` and `extensions` let a test ask for
 * things the CA must ignore (another CN, CA:true, extra SANs).
 */
export async function makeCsr(key: TestKey, opts: { subject?: string; extensions?: x509.Extension[] } = {}): Promise<string> {
  const crypto = webcrypto;
  // DER, not JWK: on Node 20 a JWK export allocates while it holds the key's mutex, and a
  // garbage collection that then finalizes the key's generation job deadlocks the process
  // (seen as a test worker hung in futex_wait under ExportJWKEcKey → ~KeyGenJob).
  const isRsa = key.privateKey.asymmetricKeyType === 'rsa';
  const curve = key.privateKey.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256';
  const alg = isRsa ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } : { name: 'ECDSA', namedCurve: curve, hash: curve === 'P-384' ? 'SHA-384' : 'SHA-256' };
  const privateKey = await crypto.subtle.importKey('pkcs8', key.privateKey.export({ format: 'der', type: 'pkcs8' }), alg, false, ['sign']);
  const publicKey = await crypto.subtle.importKey('spki', createPublicKey(key.privateKey).export({ format: 'der', type: 'spki' }), alg, true, ['verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    { name: opts.subject ?? 'CN=ignored', keys: { privateKey, publicKey }, signingAlgorithm: alg, extensions: opts.extensions ?? [] },
    crypto,
  );
  return csr.toString('pem');
}
