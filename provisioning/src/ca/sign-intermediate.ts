import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API before it loads
import { createPublicKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { pemToDer } from '@tlsfleet/common';
import { parseCsr } from '../authority/csr.js';
import { loadCaSigner } from '../authority/load-ca-signer.js';
import { CaRotationError } from './ca-rotation-error.js';
import { onlyCertificate, serialHex, signingAlgorithm, webSigningKey, type CaCurve } from './ca-keys.js';

export const OID_NAME_CONSTRAINTS = '2.5.29.30';
const BACKDATE_MS = 5 * 60_000;
const CURVES: Readonly<Record<string, CaCurve>> = { prime256v1: 'P-256', secp384r1: 'P-384' };

export interface SignIntermediateParams {
  /** PEM PKCS#10 from `tlsfleet ca request`: only its public key is used, after its signature verifies. */
  csrPem: string;
  rootCertPem: string;
  rootKeyPem: string;
  /** Lifetime of the intermediate; must end before the root does. */
  lifetimeSeconds: number;
  /** Subject DN; default `CN=tlsfleet intermediate CA <UTC timestamp>` plus the root's O. */
  subject?: string;
  /** The intermediate being replaced: its name constraints (RFC 5280 §4.2.1.10), if any, are copied. */
  replacesPem?: string;
  /** Injected clock, ms since the epoch; default Date.now. */
  now?: () => number;
}

/**
 * The root signs a new intermediate on the offline machine. Identity and constraints come
 * from here, never from the CSR: CA:true pathLen 0 (critical), keyCertSign + cRLSign
 * (critical), SKI/AKI, and the replaced intermediate's name constraints. Returns PEM.
 */
export async function signIntermediate(p: SignIntermediateParams): Promise<string> {
  let root;
  try {
    root = loadCaSigner(p.rootCertPem, p.rootKeyPem);
  } catch (err) {
    throw new CaRotationError('invalid_root', `root: ${(err as Error).message}`);
  }
  const rootCert = new x509.X509Certificate(root.certificateDer);
  if (!(await rootCert.isSelfSigned())) throw new CaRotationError('invalid_root', 'root: the certificate is not self-signed; give the root CA, not an intermediate');

  const csrDer = pemToDer(p.csrPem, 'CERTIFICATE REQUEST');
  if (!csrDer) throw new CaRotationError('invalid_csr', 'CSR: expected exactly one PEM CERTIFICATE REQUEST block');
  let spkiDer: Buffer;
  try {
    spkiDer = (await parseCsr(csrDer)).spkiDer;
  } catch (err) {
    throw new CaRotationError('invalid_csr', `CSR: ${(err as Error).message}`);
  }
  const curve = CURVES[createPublicKey({ key: spkiDer, format: 'der', type: 'spki' }).asymmetricKeyDetails?.namedCurve ?? ''];
  if (!curve) throw new CaRotationError('invalid_csr', 'CSR: an intermediate key must be EC P-256 or P-384');
  if (spkiDer.equals(Buffer.from(rootCert.publicKey.rawData))) throw new CaRotationError('invalid_csr', 'CSR: that is the root key itself');

  const now = p.now?.() ?? Date.now();
  const notAfter = new Date(now + p.lifetimeSeconds * 1000);
  if (notAfter > rootCert.notAfter) {
    throw new CaRotationError('outlives_root', `the intermediate would outlive the root (root valid until ${rootCert.notAfter.toISOString()}); shorten --lifetime`);
  }
  const replaced = p.replacesPem === undefined ? undefined : onlyCertificate(p.replacesPem);
  if (p.replacesPem !== undefined && !replaced) throw new CaRotationError('invalid_certificate', '--replaces: expected exactly one PEM certificate');
  const nameConstraints = replaced?.getExtension(OID_NAME_CONSTRAINTS);

  const publicKey = new x509.PublicKey(spkiDer);
  const crypto = webcrypto;
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialHex(),
      subject: subjectName(p.subject, rootCert, now),
      issuer: rootCert.subject,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter,
      publicKey,
      signingKey: await webSigningKey(root.privateKey, root.curve),
      signingAlgorithm: signingAlgorithm(root.curve),
      extensions: [
        // pathLen 0: the intermediate signs end entities only (RFC 5280 §4.2.1.9).
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(rootCert, false, crypto),
        ...(nameConstraints ? [nameConstraints] : []),
      ],
    },
    crypto,
  );
  return cert.toString('pem') + '\n';
}

function subjectName(subject: string | undefined, root: x509.X509Certificate, now: number): string {
  if (subject !== undefined) {
    try {
      return new x509.Name(subject).toString();
    } catch (err) {
      throw new CaRotationError('invalid_certificate', `--subject ${JSON.stringify(subject)} is not a distinguished name: ${(err as Error).message}`);
    }
  }
  // A distinct name per generation, so CRLs and logs tell the intermediates apart.
  const stamp = new Date(now).toISOString().replace(/[-:]/g, '').slice(0, 15) + 'Z';
  const organization = root.subjectName.getField('O')[0];
  return `CN=tlsfleet intermediate CA ${stamp}${organization ? `, O=${organization}` : ''}`;
}
