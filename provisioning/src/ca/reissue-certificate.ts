import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API before it loads
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { serialHex, signingAlgorithm, type CaCurve } from './ca-keys.js';

const OID_AUTHORITY_KEY_IDENTIFIER = '2.5.29.35';
const SERVER_LIFETIME_MS = 397 * 86_400_000;
const BACKDATE_MS = 5 * 60_000;

export interface NewIssuer {
  certificate: x509.X509Certificate;
  signingKey: webcrypto.CryptoKey;
  curve: CaCurve;
}

/**
 * The same certificate (subject, key, extensions) issued again by `issuer`, for 397 days or
 * until the issuer expires: server and admin certificates move to a new intermediate so the
 * previous one can be retired without waiting out their 397 days. Returns the chain PEM.
 */
export async function reissueUnder(existing: x509.X509Certificate, issuer: NewIssuer, now: number): Promise<string> {
  const crypto = webcrypto;
  const notAfter = new Date(Math.min(now + SERVER_LIFETIME_MS, issuer.certificate.notAfter.getTime()));
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialHex(),
      subject: existing.subject,
      issuer: issuer.certificate.subject,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter,
      publicKey: existing.publicKey,
      signingKey: issuer.signingKey,
      signingAlgorithm: signingAlgorithm(issuer.curve),
      extensions: [
        ...existing.extensions.filter((e) => e.type !== OID_AUTHORITY_KEY_IDENTIFIER),
        await x509.AuthorityKeyIdentifierExtension.create(issuer.certificate, false, crypto),
      ],
    },
    crypto,
  );
  return cert.toString('pem') + '\n' + issuer.certificate.toString('pem') + '\n';
}
