import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API before it loads
import { randomBytes, webcrypto, type KeyObject } from 'node:crypto';
import { pemToDer } from '@tlsfleet/common';
import * as x509 from '@peculiar/x509';

export type CaCurve = 'P-256' | 'P-384';

/** ecdsa-with-SHA256 for P-256 keys, -SHA384 for P-384 (RFC 5758 §3.2). */
export function signingAlgorithm(curve: CaCurve): EcdsaParams & { namedCurve: CaCurve } {
  return { name: 'ECDSA', namedCurve: curve, hash: curve === 'P-256' ? 'SHA-256' : 'SHA-384' };
}

interface EcdsaParams {
  name: 'ECDSA';
  hash: string;
}

/** A Node private key as the WebCrypto key @peculiar/x509 signs with. */
export async function webSigningKey(key: KeyObject, curve: CaCurve): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', key.export({ type: 'pkcs8', format: 'der' }), { name: 'ECDSA', namedCurve: curve }, false, ['sign']);
}

/** 128 random bits, positive (RFC 5280 §4.1.2.2: at most 20 octets, non-negative). */
export function serialHex(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] as number) & 0x7f) | 0x01;
  return b.toString('hex');
}

/** The one certificate of a PEM text, or undefined when it holds none, several, or bad DER. */
export function onlyCertificate(pem: string): x509.X509Certificate | undefined {
  const der = pemToDer(pem, 'CERTIFICATE');
  if (!der) return undefined;
  try {
    return new x509.X509Certificate(der);
  } catch {
    return undefined;
  }
}
