import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API before it loads
import { webcrypto, X509Certificate } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { derToPem, isSelfSigned, issuedBy, isValidTrustDomain, writeFileAtomic } from '@tlsfleet/common';
import type { DataDir } from '../data-dir.js';
import type { Store } from '../storage/store.js';
import { oneLine, pemOf, readBundle } from './ca-bundle.js';
import { CaRotationError } from './ca-rotation-error.js';
import { onlyCertificate } from './ca-keys.js';
import { createRootCa } from './create-root.js';
import { lastToExpire, liveCertificates } from './live-certificates.js';

const ROOT_FILES = { cert: 'root-ca.pem', key: 'root-ca.key' } as const;

export interface NewRootParams {
  /** A new or empty directory on the offline machine; created 0700. */
  outDir: string;
  trustDomain: string;
  lifetimeSeconds: number;
  /** Injected clock, ms since the epoch; default Date.now. */
  now?: () => number;
}

/** `ca new-root`, offline: a root with init's profile → root-ca.pem (0644) and root-ca.key (0600). */
export async function newRoot(p: NewRootParams): Promise<{ certPath: string; keyPath: string; notAfter: Date }> {
  if (!isValidTrustDomain(p.trustDomain)) throw new CaRotationError('invalid_root', `--trust-domain ${JSON.stringify(p.trustDomain)} is not a lower-case DNS name`);
  let entries: string[];
  try {
    mkdirSync(p.outDir, { recursive: true, mode: 0o700 });
    entries = readdirSync(p.outDir);
  } catch (err) {
    throw new CaRotationError('not_empty', `${p.outDir} is not a directory this can write a root into: ${(err as Error).message}`);
  }
  if (entries.length > 0) throw new CaRotationError('not_empty', `${p.outDir} is not empty; refusing to overwrite a root`);
  const { certificate, keys } = await createRootCa({ trustDomain: p.trustDomain, now: p.now?.() ?? Date.now(), lifetimeMs: p.lifetimeSeconds * 1000 });
  const certPath = join(p.outDir, ROOT_FILES.cert);
  const keyPath = join(p.outDir, ROOT_FILES.key);
  const keyPem = derToPem(new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), 'PRIVATE KEY');
  // wx: a file that appeared since the check above is never overwritten.
  writeFileSync(keyPath, keyPem, { mode: 0o600, flag: 'wx' });
  writeFileSync(certPath, certificate.toString('pem') + '\n', { mode: 0o644, flag: 'wx' });
  return { certPath, keyPath, notAfter: certificate.notAfter };
}

/**
 * `ca trust-root`, on the serving data dir, ahead of any intermediate under it: the root joins
 * ca-bundle.pem (after the roots already there), and the time is recorded in
 * trusted-roots.json. Every check runs before the first write.
 */
export async function trustRoot(dataDir: DataDir, certificatePem: string, opts: { now?: () => number } = {}): Promise<{ subject: string; notAfter: Date }> {
  const now = opts.now?.() ?? Date.now();
  const root = parseRoot(certificatePem);
  if (!isSelfSigned(root) || !hasKeyCertSign(root)) {
    throw new CaRotationError('invalid_root', 'not a self-signed CA certificate with keyCertSign whose signature verifies with its own key');
  }
  if (now < Date.parse(root.validFrom) || now >= Date.parse(root.validTo)) {
    throw new CaRotationError('not_valid_now', `the root is valid from ${new Date(root.validFrom).toISOString()} to ${new Date(root.validTo).toISOString()}, not now`);
  }
  const trustDomain = dataDir.config.trustDomain;
  const current = dataDir.has('rootCert') ? organizationOf(new X509Certificate(dataDir.read('rootCert'))) : undefined;
  if (current === trustDomain && organizationOf(root) !== trustDomain) {
    throw new CaRotationError('trust_domain_differs', `the root's O is ${JSON.stringify(organizationOf(root) ?? '')}, not this trust domain ${JSON.stringify(trustDomain)} (make it with \`tlsfleet ca new-root --trust-domain ${trustDomain}\`)`);
  }
  const bundle = readBundle(dataDir);
  const spki = root.publicKey.export({ type: 'spki', format: 'der' });
  if (bundle.some((c) => c.fingerprint256 === root.fingerprint256 || c.publicKey.export({ type: 'spki', format: 'der' }).equals(spki))) {
    throw new CaRotationError('already_trusted', 'ca-bundle.pem already holds this root (or a certificate for its key)');
  }
  const roots = bundle.filter(isSelfSigned);
  const rest = bundle.filter((c) => !isSelfSigned(c));
  const times = trustTimes(dataDir);
  await writeFileAtomic(dataDir.path('trustedRoots'), JSON.stringify({ ...times, [root.fingerprint256]: new Date(now).toISOString() }, null, 2) + '\n', 0o644);
  await writeFileAtomic(dataDir.path('caBundle'), pemOf([...roots, root, ...rest]), 0o644);
  return { subject: oneLine(root.subject), notAfter: new Date(root.validTo) };
}

export interface Untrusted {
  subject: string;
  /** Live certificates that may chain to it and that a forced untrust left behind. */
  stillLive: number;
  lastNotAfter: Date | undefined;
}

/**
 * `ca untrust-root`, at the end of a root rotation: drops a root from ca-bundle.pem. Refuses
 * the root of the current or previous intermediate and the last root; refuses, unless
 * `force`, while live certificates may chain to it: those not issued by the current or
 * previous intermediate (the store keeps leaves, not chains, so an unknown issuer counts).
 */
export async function untrustRoot(dataDir: DataDir, store: Store, certificatePem: string, opts: { now?: () => number; force?: boolean } = {}): Promise<Untrusted> {
  const now = opts.now?.() ?? Date.now();
  const root = parseRoot(certificatePem);
  const bundle = readBundle(dataDir);
  if (!bundle.some((c) => c.fingerprint256 === root.fingerprint256 && isSelfSigned(c))) throw new CaRotationError('not_trusted', 'ca-bundle.pem holds no such root');
  if (bundle.filter(isSelfSigned).length === 1) throw new CaRotationError('last_root', 'this is the last root of ca-bundle.pem; trust and install another first');
  const signers = (['intermediateCert', 'previousIntermediateCert'] as const).filter((f) => dataDir.has(f)).map((f) => new X509Certificate(dataDir.read(f)));
  const inUse = signers.find((ca) => issuedBy(ca, root));
  if (inUse) {
    throw new CaRotationError('root_in_use', `it is the root of ${oneLine(inUse.subject)}; install an intermediate under another root and \`tlsfleet ca retire\` this one first`);
  }
  const live = (await liveCertificates(dataDir, store, now)).filter((c) => !signers.some((ca) => issuedBy(c.certificate, ca)));
  const last = lastToExpire(live);
  if (last && !opts.force) {
    throw new CaRotationError(
      'live_certificates',
      `${live.length} certificate(s) not issued by the current or previous intermediate are still valid, the last (${last.subject}) until ${new Date(last.notAfter).toISOString()}; untrust after that, or pass --force`,
    );
  }
  const { [root.fingerprint256]: _dropped, ...times } = trustTimes(dataDir);
  await writeFileAtomic(dataDir.path('caBundle'), pemOf(bundle.filter((c) => c.fingerprint256 !== root.fingerprint256)), 0o644);
  if (dataDir.has('trustedRoots')) await writeFileAtomic(dataDir.path('trustedRoots'), JSON.stringify(times, null, 2) + '\n', 0o644);
  return { subject: oneLine(root.subject), stillLive: live.length, lastNotAfter: last && new Date(last.notAfter) };
}

export interface RootNotOnDevices {
  /** Devices whose latest live certificate (and so the bundle they hold) predates the root's trust-root. */
  devices: string[];
  /** When `ca trust-root` added the root; undefined when there is no record (added by hand). */
  trustedAt: Date | undefined;
}

/**
 * Before `ca install` of an intermediate under another root than the current one: devices
 * verify the servers with the bundle of their last enroll or renew, so a device whose latest
 * live certificate was issued before the new root was trusted cannot hold it yet. Undefined
 * when the intermediate is under the current root (nothing for devices to learn).
 */
export async function devicesLackingRoot(dataDir: DataDir, store: Store, intermediatePem: string, opts: { now?: () => number } = {}): Promise<RootNotOnDevices | undefined> {
  const now = opts.now?.() ?? Date.now();
  const intermediate = onlyCertificate(intermediatePem);
  if (!intermediate) return undefined;
  const node = new X509Certificate(Buffer.from(intermediate.rawData));
  const root = readBundle(dataDir).filter(isSelfSigned).find((r) => issuedBy(node, r));
  const current = new X509Certificate(dataDir.read('intermediateCert'));
  if (!root || issuedBy(current, root)) return undefined;
  const recorded = trustTimes(dataDir)[root.fingerprint256];
  const trustedAt = recorded === undefined ? undefined : Date.parse(recorded);
  const latest = new Map<string, number>();
  for (const c of await liveCertificates(dataDir, store, now)) {
    if (c.owner !== undefined) latest.set(c.owner, Math.max(latest.get(c.owner) ?? 0, c.issuedAt));
  }
  const devices = [...latest].filter(([, issuedAt]) => trustedAt === undefined || issuedAt < trustedAt).map(([id]) => id);
  return { devices: devices.sort(), trustedAt: trustedAt === undefined ? undefined : new Date(trustedAt) };
}

function parseRoot(pem: string): X509Certificate {
  const cert = onlyCertificate(pem);
  if (!cert) throw new CaRotationError('invalid_certificate', 'expected exactly one PEM certificate');
  return new X509Certificate(Buffer.from(cert.rawData));
}

function hasKeyCertSign(c: X509Certificate): boolean {
  const usage = new x509.X509Certificate(c.raw).getExtension(x509.KeyUsagesExtension);
  return usage !== null && (usage.usages & x509.KeyUsageFlags.keyCertSign) !== 0;
}

function organizationOf(c: X509Certificate): string | undefined {
  return new x509.X509Certificate(c.raw).subjectName.getField('O')[0];
}

function trustTimes(dataDir: DataDir): Record<string, string> {
  if (!dataDir.has('trustedRoots')) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(dataDir.read('trustedRoots'));
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new CaRotationError('invalid_certificate', `${dataDir.path('trustedRoots')} is not a JSON object of fingerprint → time; fix or delete it`);
  }
  return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
}
