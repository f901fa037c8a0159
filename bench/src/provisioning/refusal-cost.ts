import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API before it loads
import { createPublicKey, verify, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import type { Authority } from '@tlsfleet/provisioning';
import { rsaKeyWithExponent } from './rsa-key-with-exponent.js';

const OPS = 200;
const MAX_MS = 2_000;

/**
 * Issue 19 item 2, measured: a CSR with an RSA-3072 key and a 3000-bit public exponent and a
 * made-up token, refused by the Authority (token lookup first, no verification), against
 * importing that key and verifying the CSR's signature with it (crypto.verify), which is
 * what the order before the fix did first.
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
  const [info, spki, signature] = signedParts(der);
  const verifyFirstMicros = await perOp(async () => {
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    if (!verify('sha256', info, key, signature)) throw new Error('the costly CSR does not verify');
  });
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

/** A CSR's certificationRequestInfo (the signed bytes), its SubjectPublicKeyInfo and its signature, DER. */
function signedParts(csrDer: Buffer): [Buffer, Buffer, Buffer] {
  const parsed = asn1js.fromBER(csrDer);
  if (parsed.offset !== csrDer.length || !(parsed.result instanceof asn1js.Sequence)) throw new Error('malformed CSR');
  const [info, , signature] = parsed.result.valueBlock.value as [asn1js.Sequence, asn1js.Sequence, asn1js.BitString];
  const spki = info.valueBlock.value[2] as asn1js.Sequence;
  return [Buffer.from(info.valueBeforeDecodeView), Buffer.from(spki.valueBeforeDecodeView), Buffer.from(signature.valueBlock.valueHexView)];
}
