import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API before it loads
import { createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { parseCsr, type Authority } from '../index.js';
import { rsaKeyWithExponent } from './rsa-key-with-exponent.js';

const OPS = 200;
const MAX_MS = 2_000;

/**
 * Issue 19 item 2, measured: a CSR with an RSA-3072 key and a 3000-bit public exponent and a
 * made-up token, refused by the Authority (token lookup first, no verification), against
 * verifying that CSR's signature alone, which is what the order before the fix did first.
 * Each loop is bounded in count and time. Microseconds per request.
 */
export async function costOfRefusals(authority: Authority): Promise<{ refusedMicros: number; verifyFirstMicros: number }> {
  const der = await rsaCsr(rsaKeyWithExponent(3072, 3000));
  const madeUp = 'tf_' + 'A'.repeat(32);
  const refusedMicros = await perOp(async () => {
    const outcome = await authority.enroll(madeUp, der).then(
      () => 'issued',
      (err: { code?: string }) => err.code,
    );
    if (outcome !== 'invalid_token') throw new Error(`expected invalid_token, got ${outcome}`);
  });
  const verifyFirstMicros = await perOp(() => parseCsr(der));
  return { refusedMicros, verifyFirstMicros };
}

async function perOp(op: () => Promise<unknown>): Promise<number> {
  await op();
  const started = performance.now();
  let n = 0;
  while (n < OPS && performance.now() - started < MAX_MS) {
    await op();
    n++;
  }
  return ((performance.now() - started) * 1000) / n;
}

/** A PKCS#10 signed with sha256WithRSAEncryption by `privateKey`. */
async function rsaCsr(privateKey: KeyObject): Promise<Buffer> {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const keys = {
    privateKey: await webcrypto.subtle.importKey('jwk', privateKey.export({ format: 'jwk' }) as webcrypto.JsonWebKey, alg, false, ['sign']),
    publicKey: await webcrypto.subtle.importKey('jwk', createPublicKey(privateKey).export({ format: 'jwk' }) as webcrypto.JsonWebKey, alg, true, ['verify']),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=costly', keys, signingAlgorithm: alg }, webcrypto);
  return Buffer.from(csr.rawData);
}
