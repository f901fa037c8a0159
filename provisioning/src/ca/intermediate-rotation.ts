import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API before it loads
import { createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import { rm } from 'node:fs/promises';
import * as x509 from '@peculiar/x509';
import { derToPem, isSelfSigned, issuedBy, syncDirectory, writeFileAtomic } from '@tlsfleet/common';
import { loadCaSigner } from '../authority/load-ca-signer.js';
import type { DataDir } from '../data-dir.js';
import type { Store } from '../storage/store.js';
import { oneLine, pemOf, readBundle } from './ca-bundle.js';
import { CaRotationError } from './ca-rotation-error.js';
import { onlyCertificate, webSigningKey } from './ca-keys.js';
import { lastToExpire, leafOf, liveCertificates, REISSUED } from './live-certificates.js';
import { reissueUnder } from './reissue-certificate.js';
import { OID_NAME_CONSTRAINTS } from './sign-intermediate.js';

/**
 * Step 1, on the serving data dir: a new P-256 key (0600) and a CSR for the offline root to
 * sign. Refuses while another request is pending, so a signed certificate always matches.
 */
export async function requestIntermediate(dataDir: DataDir): Promise<{ csrPath: string }> {
  if (dataDir.has('nextIntermediateKey')) {
    throw new CaRotationError('pending_exists', `a request is already pending (${dataDir.path('nextIntermediateKey')}); install its signed certificate, or delete that key and its CSR to start over`);
  }
  const crypto = webcrypto;
  const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    // The signer ignores this name: identity comes from `tlsfleet ca sign`.
    { name: `CN=tlsfleet intermediate CA request, O=${dataDir.config.trustDomain}`, keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } },
    crypto,
  );
  const keyPem = derToPem(new Uint8Array(await crypto.subtle.exportKey('pkcs8', keys.privateKey)), 'PRIVATE KEY');
  await writeFileAtomic(dataDir.path('nextIntermediateKey'), keyPem, 0o600);
  await writeFileAtomic(dataDir.path('nextIntermediateCsr'), csr.toString('pem') + '\n', 0o644);
  return { csrPath: dataDir.path('nextIntermediateCsr') };
}

export interface Installed {
  subject: string;
  notAfter: Date;
  previousSubject: string;
}

/**
 * Step 3, on the serving data dir: checks the signed intermediate (matches the pending key,
 * a pathLen 0 CA, signed by a root of the bundle, valid now, same name constraints), then
 * keeps the current intermediate as the previous one (its key signs only its CRL), makes the
 * new one the signer, trusts both in ca-bundle.pem and re-issues the server and admin
 * certificates under it. Every check runs before the first write.
 */
export async function installIntermediate(dataDir: DataDir, certificatePem: string, opts: { now?: () => number } = {}): Promise<Installed> {
  if (!dataDir.has('nextIntermediateKey')) throw new CaRotationError('no_pending_key', 'no pending intermediate key in this data dir: run `tlsfleet ca request` first');
  if (dataDir.has('previousIntermediateCert')) {
    throw new CaRotationError('previous_not_retired', 'a previous intermediate is still in place: run `tlsfleet ca retire` before installing another');
  }
  const now = opts.now?.() ?? Date.now();
  const certificate = onlyCertificate(certificatePem);
  if (!certificate) throw new CaRotationError('invalid_certificate', 'expected exactly one PEM certificate');
  const node = new X509Certificate(Buffer.from(certificate.rawData));
  const pendingKeyPem = dataDir.readSecret('nextIntermediateKey');
  if (!node.checkPrivateKey(createPrivateKey(pendingKeyPem))) {
    throw new CaRotationError('key_mismatch', 'the certificate is not for the pending key of this data dir (signed from another CSR?)');
  }
  let signer;
  try {
    signer = loadCaSigner(certificatePem, pendingKeyPem);
  } catch (err) {
    throw new CaRotationError('invalid_certificate', (err as Error).message);
  }
  const constraints = certificate.getExtension(x509.BasicConstraintsExtension);
  const usage = certificate.getExtension(x509.KeyUsagesExtension);
  if (constraints?.pathLength !== 0 || !usage || (usage.usages & x509.KeyUsageFlags.cRLSign) === 0) {
    throw new CaRotationError('invalid_certificate', 'an intermediate must have pathLen 0 and keyUsage cRLSign (sign it with `tlsfleet ca sign`)');
  }
  const roots = readBundle(dataDir).filter(isSelfSigned);
  const root = roots.find((r) => issuedBy(node, r));
  if (!root) {
    throw new CaRotationError('not_signed_by_root', 'the certificate is not signed by a root in ca-bundle.pem');
  }
  if (now < certificate.notBefore.getTime() || now >= certificate.notAfter.getTime()) {
    throw new CaRotationError('not_valid_now', `the certificate is valid from ${certificate.notBefore.toISOString()} to ${certificate.notAfter.toISOString()}, not now`);
  }
  const currentPem = dataDir.read('intermediateCert');
  const current = onlyCertificate(currentPem);
  if (!current) throw new CaRotationError('invalid_certificate', `${dataDir.path('intermediateCert')} does not hold exactly one certificate`);
  if (!sameExtension(current, certificate, OID_NAME_CONSTRAINTS)) {
    throw new CaRotationError('name_constraints_differ', 'the new intermediate does not carry the current one\'s name constraints (sign with --replaces intermediate-ca.pem)');
  }
  const currentKeyPem = dataDir.readSecret('intermediateKey');
  const issuer = { certificate, signingKey: await webSigningKey(signer.privateKey, signer.curve), curve: signer.curve };
  const reissued = await Promise.all(REISSUED.map(async (file) => [file, await reissueUnder(leafOf(dataDir, file), issuer, now)] as const));

  // Previous first: a crash after any step leaves the current signer loadable and trusted.
  await writeFileAtomic(dataDir.path('previousIntermediateCert'), pem(current), 0o644);
  await writeFileAtomic(dataDir.path('previousIntermediateKey'), currentKeyPem, 0o600);
  await writeFileAtomic(dataDir.path('caBundle'), pemOf(roots) + pem(certificate) + pem(current), 0o644);
  await writeFileAtomic(dataDir.path('intermediateKey'), pendingKeyPem, 0o600);
  await writeFileAtomic(dataDir.path('intermediateCert'), pem(certificate), 0o644);
  // root-ca.pem always names the root of the current intermediate (docs/operations.md).
  if (!dataDir.has('rootCert') || new X509Certificate(dataDir.read('rootCert')).fingerprint256 !== root.fingerprint256) {
    await writeFileAtomic(dataDir.path('rootCert'), pemOf([root]), 0o644);
  }
  for (const [file, chain] of reissued) await writeFileAtomic(dataDir.path(file), chain, 0o644);
  await rm(dataDir.path('nextIntermediateKey'));
  await rm(dataDir.path('nextIntermediateCsr'), { force: true });
  await syncDirectory(dataDir.dir);
  return { subject: certificate.subject, notAfter: certificate.notAfter, previousSubject: current.subject };
}

export interface Retired {
  subject: string;
  /** The latest notAfter among the live certificates it issued (none: undefined). */
  lastNotAfter: Date | undefined;
  /** Live certificates it issued that a forced retire left behind. */
  stillLive: number;
}

/**
 * Step 4, once every certificate the previous intermediate issued has expired: drops it from
 * ca-bundle.pem and deletes its certificate, key and CRL. Too early, it refuses with the date
 * unless `force`. Revoked certificates do not count: they fail anyway.
 */
export async function retireIntermediate(dataDir: DataDir, store: Store, opts: { now?: () => number; force?: boolean } = {}): Promise<Retired> {
  if (!dataDir.has('previousIntermediateCert')) throw new CaRotationError('no_previous', 'no previous intermediate to retire in this data dir');
  const now = opts.now?.() ?? Date.now();
  const previous = new X509Certificate(dataDir.read('previousIntermediateCert'));
  const live = (await liveCertificates(dataDir, store, now)).filter((c) => c.certificate.checkIssued(previous));
  const last = lastToExpire(live);
  if (last && !opts.force) {
    throw new CaRotationError(
      'too_early',
      `${live.length} certificate(s) issued by the previous intermediate are still valid, the last (${last.subject}) until ${new Date(last.notAfter).toISOString()}; retire after that, or pass --force`,
    );
  }
  const kept = readBundle(dataDir).filter((c) => c.fingerprint256 !== previous.fingerprint256);
  await writeFileAtomic(dataDir.path('caBundle'), pemOf(kept), 0o644);
  for (const file of ['previousIntermediateKey', 'previousCrl', 'previousIntermediateCert'] as const) await rm(dataDir.path(file), { force: true });
  await syncDirectory(dataDir.dir);
  return { subject: oneLine(previous.subject), lastNotAfter: last && new Date(last.notAfter), stillLive: live.length };
}

function sameExtension(a: x509.X509Certificate, b: x509.X509Certificate, oid: string): boolean {
  const x = a.getExtension(oid)?.rawData;
  const y = b.getExtension(oid)?.rawData;
  return x === undefined || y === undefined ? x === y : Buffer.from(x).equals(Buffer.from(y));
}

function pem(c: x509.X509Certificate): string {
  return c.toString('pem') + '\n';
}
