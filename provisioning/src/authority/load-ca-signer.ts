import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { pemToDer } from '@tlsfleet/common';
import * as pkijs from 'pkijs';
import type { CaSigner } from './ca-signer.js';

const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
const OID_SUBJECT_KEY_IDENTIFIER = '2.5.29.14';
const KEY_CERT_SIGN = 0x04; // keyCertSign is bit 5 of the first KeyUsage octet (RFC 5280 §4.2.1.3)

const CURVES: Readonly<Record<string, CaSigner['curve']>> = { prime256v1: 'P-256', secp384r1: 'P-384' };

/**
 * Loads the issuing CA once at start-up: the certificate must be a v3 CA certificate
 * that may sign certificates and has a subjectKeyIdentifier, and the key must be its EC
 * P-256/P-384 private key. Throws Error with the reason otherwise. The result is frozen.
 */
export function loadCaSigner(certPem: string, keyPem: string): CaSigner {
  const certificateDer = pemToDer(certPem, 'CERTIFICATE');
  if (!certificateDer) throw new Error('CA certificate: expected exactly one PEM CERTIFICATE block');
  const privateKey = readPrivateKey(keyPem);

  if (!new X509Certificate(certificateDer).checkPrivateKey(privateKey)) throw new Error('CA key does not match the CA certificate');
  const curve = CURVES[privateKey.asymmetricKeyDetails?.namedCurve ?? ''];
  if (privateKey.asymmetricKeyType !== 'ec' || !curve) throw new Error('CA key must be EC P-256 or P-384');

  const certificate = pkijs.Certificate.fromBER(certificateDer);
  if (certificate.version !== 2) throw new Error('CA certificate must be X.509 v3');
  const extensions = new Map((certificate.extensions ?? []).map((e) => [e.extnID, e]));

  // RFC 5280 §4.2.1.9: a CA certificate has basicConstraints cA TRUE, marked critical.
  const basicConstraints = extensions.get(OID_BASIC_CONSTRAINTS);
  if (!basicConstraints?.critical || !(basicConstraints.parsedValue as pkijs.BasicConstraints | undefined)?.cA) {
    throw new Error('CA certificate must have a critical basicConstraints with cA TRUE');
  }
  // RFC 5280 §4.2.1.3: the key may sign certificates only when keyCertSign is set.
  const keyUsage = extensions.get(OID_KEY_USAGE)?.parsedValue as { valueBlock: { valueHexView: Uint8Array } } | undefined;
  if (!keyUsage || ((keyUsage.valueBlock.valueHexView[0] ?? 0) & KEY_CERT_SIGN) === 0) {
    throw new Error('CA certificate must have a keyUsage with keyCertSign');
  }
  // RFC 5280 §4.2.1.2: CA certificates carry a subjectKeyIdentifier; issued certificates copy it into AKI.
  const subjectKeyId = extensions.get(OID_SUBJECT_KEY_IDENTIFIER)?.parsedValue as { valueBlock: { valueHexView: Uint8Array } } | undefined;
  const keyIdentifier = Buffer.from(subjectKeyId?.valueBlock.valueHexView ?? []);
  if (keyIdentifier.length === 0) throw new Error('CA certificate must have a subjectKeyIdentifier');

  return Object.freeze({
    certificateDer,
    // Verbatim bytes, so issued certificates' issuer matches this subject byte for byte.
    subjectNameDer: Buffer.from(certificate.subject.valueBeforeDecode),
    keyIdentifier,
    privateKey,
    curve,
  });
}

function readPrivateKey(keyPem: string): KeyObject {
  try {
    return createPrivateKey(keyPem);
  } catch (cause) {
    throw new Error('CA key: not a readable unencrypted PEM private key', { cause });
  }
}
