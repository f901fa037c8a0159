import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API before it loads
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pemX509Certificates } from '@tlsfleet/common';
import { makeTestCsr } from '../authority/csr.fixture.js';
import { authorityFromDataDir } from '../data-dir-authority.js';
import { DataDir } from '../data-dir.js';
import { initDataDir } from '../init.js';
import { SqliteStore } from '../storage/sqlite-store.js';
import { codeOf, snapshot } from './ca-rotation.fixture.js';
import { installIntermediate, requestIntermediate, retireIntermediate } from './intermediate-rotation.js';
import { devicesLackingRoot, newRoot, trustRoot, untrustRoot } from './root-rotation.js';
import { signIntermediate } from './sign-intermediate.js';

const DAY_S = 86_400;
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;
const bundleOf = (dataDir: DataDir) => pemX509Certificates(dataDir.read('caBundle')).map((c) => c.fingerprint256);

describe('root rotation', () => {
  let tmp: string;
  let data: string;
  let dataDir: DataDir;
  let oldRoot: { cert: string; key: string };
  let store: SqliteStore;

  beforeEach(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'tlsfleet-root-rotation-'));
    data = join(tmp, 'data');
    await initDataDir({ dataDir: data, trustDomain: 'fleet.test' });
    // The old root's key lives offline, as the runbook says.
    mkdirSync(join(tmp, 'old'));
    oldRoot = { cert: join(tmp, 'old', 'root-ca.pem'), key: join(tmp, 'old', 'root-ca.key') };
    renameSync(join(data, 'root-ca.key'), oldRoot.key);
    copyFileSync(join(data, 'root-ca.pem'), oldRoot.cert);
    dataDir = DataDir.open(data);
    store = SqliteStore.open(dataDir.path('database'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const makeRoot = async (name: string, o: { trustDomain?: string; lifetimeSeconds?: number; now?: () => number } = {}) => {
    const { certPath, keyPath } = await newRoot({ outDir: join(tmp, name), trustDomain: o.trustDomain ?? 'fleet.test', lifetimeSeconds: o.lifetimeSeconds ?? 3650 * DAY_S, now: o.now });
    return { cert: certPath, key: keyPath, pem: readFileSync(certPath, 'utf8') };
  };
  /** `ca request` → `ca sign` with `root` → `ca install`. */
  const rotateIntermediateUnder = async (root: { cert: string; key: string }) => {
    await requestIntermediate(dataDir);
    const signed = await signIntermediate({
      csrPem: dataDir.read('nextIntermediateCsr'),
      rootCertPem: readFileSync(root.cert, 'utf8'),
      rootKeyPem: readFileSync(root.key, 'utf8'),
      lifetimeSeconds: 365 * DAY_S,
      replacesPem: dataDir.read('intermediateCert'),
    });
    await installIntermediate(dataDir, signed);
    return signed;
  };

  it('makes a root with init\'s profile, its key 0600, and refuses a non-empty directory or a bad trust domain', async () => {
    const root = await makeRoot('new');
    const cert = new X509Certificate(root.pem);
    const initRoot = new X509Certificate(readFileSync(oldRoot.cert));
    expect(cert.subject).toBe(initRoot.subject);
    expect(cert.ca).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    expect(cert.toLegacyObject().ext_key_usage).toBeUndefined();
    const profile = new x509.X509Certificate(root.pem);
    expect(profile.getExtension(x509.KeyUsagesExtension)?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(profile.getExtension(x509.BasicConstraintsExtension)?.critical).toBe(true);
    expect(profile.getExtension(x509.SubjectKeyIdentifierExtension)).not.toBeNull();
    expect(statSync(root.key).mode & 0o777).toBe(0o600);

    const before = snapshot(join(tmp, 'new'));
    expect(await codeOf(newRoot({ outDir: join(tmp, 'new'), trustDomain: 'fleet.test', lifetimeSeconds: DAY_S }))).toBe('not_empty');
    expect(snapshot(join(tmp, 'new'))).toEqual(before);
    expect(await codeOf(newRoot({ outDir: join(tmp, 'bad'), trustDomain: 'Not A Domain/', lifetimeSeconds: DAY_S }))).toBe('invalid_root');
    expect(await codeOf(newRoot({ outDir: root.cert, trustDomain: 'fleet.test', lifetimeSeconds: DAY_S }))).toBe('not_empty'); // a file, not a directory
  });

  it('refuses to trust garbage, a non-root, an expired root, another trust domain\'s root, or a root already there, changing nothing', async () => {
    const before = snapshot(data);
    expect(await codeOf(trustRoot(dataDir, 'garbage'))).toBe('invalid_certificate');
    expect(await codeOf(trustRoot(dataDir, dataDir.read('intermediateCert')))).toBe('invalid_root');
    expect(await codeOf(trustRoot(dataDir, dataDir.read('brokerCert').split('-----END CERTIFICATE-----')[0] + '-----END CERTIFICATE-----\n'))).toBe('invalid_root');
    const expired = await makeRoot('expired', { lifetimeSeconds: DAY_S, now: () => Date.now() - 2 * DAY_S * 1000 });
    expect(await codeOf(trustRoot(dataDir, expired.pem))).toBe('not_valid_now');
    const foreign = await makeRoot('foreign', { trustDomain: 'other.test' });
    expect(await codeOf(trustRoot(dataDir, foreign.pem))).toBe('trust_domain_differs');
    expect(await codeOf(trustRoot(dataDir, readFileSync(oldRoot.cert, 'utf8')))).toBe('already_trusted');
    // A bundle of two certificates is not one root.
    const fresh = await makeRoot('fresh');
    expect(await codeOf(trustRoot(dataDir, fresh.pem + fresh.pem))).toBe('invalid_certificate');
    expect(snapshot(data)).toEqual(before);
  });

  it('trusts a new root beside the old one, ahead of the intermediates, records when, and refuses it a second time', async () => {
    const root = await makeRoot('new');
    const [oldFp, intermediateFp] = bundleOf(dataDir);
    const at = Date.now() + 1000;
    await trustRoot(dataDir, root.pem, { now: () => at });
    expect(bundleOf(dataDir)).toEqual([oldFp, fingerprint(root.pem), intermediateFp]);
    expect(JSON.parse(dataDir.read('trustedRoots'))).toEqual({ [fingerprint(root.pem)]: new Date(at).toISOString() });
    expect(await codeOf(trustRoot(dataDir, root.pem))).toBe('already_trusted');
  });

  it('refuses to untrust an unknown root, the last root, or the root of the current or previous intermediate, changing nothing', async () => {
    const root = await makeRoot('new');
    expect(await codeOf(untrustRoot(dataDir, store, root.pem))).toBe('not_trusted');
    expect(await codeOf(untrustRoot(dataDir, store, readFileSync(oldRoot.cert, 'utf8')))).toBe('last_root');
    expect(await codeOf(untrustRoot(dataDir, store, dataDir.read('intermediateCert')))).toBe('not_trusted');
    await trustRoot(dataDir, root.pem);
    const before = snapshot(data);
    expect(await codeOf(untrustRoot(dataDir, store, readFileSync(oldRoot.cert, 'utf8')))).toBe('root_in_use'); // current intermediate
    expect(snapshot(data)).toEqual(before);
    await rotateIntermediateUnder(root);
    expect(await codeOf(untrustRoot(dataDir, store, readFileSync(oldRoot.cert, 'utf8')))).toBe('root_in_use'); // previous intermediate
    expect(await codeOf(untrustRoot(dataDir, store, root.pem))).toBe('root_in_use'); // current intermediate
  });

  it('walks a root rotation: root-ca.pem follows the current intermediate, untrust waits for old-root certificates unless forced', async () => {
    const authority = authorityFromDataDir(dataDir, store);
    const { token } = await authority.mintToken({ subject: 'sensor-1', certTtlSeconds: 3600, createdBy: 'test' });
    const issued = await authority.enroll(token, makeTestCsr().der);
    const root = await makeRoot('new');
    await trustRoot(dataDir, root.pem);
    const newIntermediate = await rotateIntermediateUnder(root);
    expect(fingerprint(dataDir.read('rootCert'))).toBe(fingerprint(root.pem));
    await retireIntermediate(dataDir, store, { force: true });

    const before = snapshot(data);
    await expect(untrustRoot(dataDir, store, readFileSync(oldRoot.cert, 'utf8'))).rejects.toThrow(issued.notAfter.toISOString());
    expect(await codeOf(untrustRoot(dataDir, store, readFileSync(oldRoot.cert, 'utf8')))).toBe('live_certificates');
    expect(snapshot(data)).toEqual(before);
    // After the last old-root certificate expires it goes without --force.
    const later = await untrustRoot(dataDir, store, readFileSync(oldRoot.cert, 'utf8'), { now: () => issued.notAfter.getTime() });
    expect(later.stillLive).toBe(0);
    expect(bundleOf(dataDir)).toEqual([fingerprint(root.pem), fingerprint(newIntermediate)]);
    expect(JSON.parse(dataDir.read('trustedRoots'))).toEqual({ [fingerprint(root.pem)]: expect.any(String) });
  });

  it('untrusts with force while old-root certificates live, and says how many', async () => {
    const authority = authorityFromDataDir(dataDir, store);
    const { token } = await authority.mintToken({ subject: 'sensor-1', certTtlSeconds: 3600, createdBy: 'test' });
    await authority.enroll(token, makeTestCsr().der);
    const root = await makeRoot('new');
    await trustRoot(dataDir, root.pem);
    await rotateIntermediateUnder(root);
    await retireIntermediate(dataDir, store, { force: true });
    expect((await untrustRoot(dataDir, store, readFileSync(oldRoot.cert, 'utf8'), { force: true })).stillLive).toBe(1);
    expect(bundleOf(dataDir)).not.toContain(fingerprint(readFileSync(oldRoot.cert, 'utf8')));
  });

  it('names the devices whose latest certificate predates trust-root when the next intermediate is under the new root', async () => {
    let now = Date.now();
    const authority = authorityFromDataDir(dataDir, store, { now: () => now });
    const enroll = async (id: string) => authority.enroll((await authority.mintToken({ subject: id, certTtlSeconds: 3600, createdBy: 'test' })).token, makeTestCsr().der);
    await enroll('before-1');
    await enroll('before-2');
    const root = await makeRoot('new');
    now += 60_000;
    await trustRoot(dataDir, root.pem, { now: () => now });
    now += 60_000;
    await enroll('after');
    await requestIntermediate(dataDir);
    const sign = (r: { cert: string; key: string }) =>
      signIntermediate({ csrPem: dataDir.read('nextIntermediateCsr'), rootCertPem: readFileSync(r.cert, 'utf8'), rootKeyPem: readFileSync(r.key, 'utf8'), lifetimeSeconds: 365 * DAY_S });
    const lacking = await devicesLackingRoot(dataDir, store, await sign(root), { now: () => now });
    expect(lacking?.devices).toEqual(['before-1', 'before-2']);
    expect(lacking?.trustedAt?.getTime()).toBe(now - 60_000);
    // Under the current root there is nothing for devices to learn.
    expect(await devicesLackingRoot(dataDir, store, await sign(oldRoot), { now: () => now })).toBeUndefined();
    // A damaged record is refused by name, not read as "no record".
    writeFileSync(dataDir.path('trustedRoots'), '[1, 2');
    expect(await codeOf(devicesLackingRoot(dataDir, store, await sign(root), { now: () => now }))).toBe('invalid_certificate');
    // A root added by hand has no record: every device counts.
    writeFileSync(dataDir.path('trustedRoots'), '{}\n');
    expect((await devicesLackingRoot(dataDir, store, await sign(root), { now: () => now }))?.devices).toEqual(['after', 'before-1', 'before-2']);
  });
});
