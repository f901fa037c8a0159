import 'reflect-metadata';
import { createPrivateKey, KeyObject, randomBytes, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

/**
 * A device certificate of the tlsfleet profile, signed by the data dir's own intermediate,
 * whose validity ended a day ago: everything is right but the dates. PEM of the leaf.
 */
export async function expiredDeviceCertificate(dataDir: string, id: string, trustDomain = 'tlsfleet.local'): Promise<string> {
  const day = 86_400_000;
  const { certPem } = await clientCertificate(dataDir, {
    cn: id,
    uri: `spiffe://${trustDomain}/device/${id}`,
    notBefore: new Date(Date.now() - 2 * day),
    notAfter: new Date(Date.now() - day),
  });
  return certPem;
}

/**
 * A client certificate of the tlsfleet profile for any identity URI (an admin's too), signed
 * by the data dir's own intermediate, with the validity asked for: leaf PEM and key PEM.
 */
export async function clientCertificate(
  dataDir: string,
  opts: { cn: string; uri: string; notBefore: Date; notAfter: Date },
): Promise<{ certPem: string; keyPem: string }> {
  const crypto = webcrypto;
  const issuer = new x509.X509Certificate(readFileSync(join(dataDir, 'intermediate-ca.pem'), 'utf8'));
  // DER, not JWK: see csr.ts (a JWK export can deadlock Node 20 under garbage collection).
  const pkcs8 = createPrivateKey(readFileSync(join(dataDir, 'intermediate-ca.key'))).export({ format: 'der', type: 'pkcs8' });
  const signingKey = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const leafKeys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f;
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial.toString('hex'),
      subject: `CN=${opts.cn}`,
      issuer: issuer.subject,
      notBefore: opts.notBefore,
      notAfter: opts.notAfter,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      publicKey: leafKeys.publicKey,
      signingKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: opts.uri }]),
        await x509.AuthorityKeyIdentifierExtension.create(issuer, false, crypto),
        await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const keyPem = KeyObject.from(leafKeys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem: cert.toString('pem'), keyPem };
}
