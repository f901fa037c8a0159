import { createPrivateKey, X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { derToPem, pemCertificates, pemX509Certificates } from '@tlsfleet/common';
import { authorityFromDataDir } from '../data-dir-authority.js';
import { DataDir } from '../data-dir.js';
import { initDataDir } from '../init.js';
import { SqliteStore } from '../storage/sqlite-store.js';
import { makeTestCsr } from '../authority/csr.fixture.js';
import { codeOf, snapshot } from './ca-rotation.fixture.js';
import { installIntermediate, requestIntermediate, retireIntermediate } from './intermediate-rotation.js';
import { signIntermediate } from './sign-intermediate.js';

const DAY_S = 86_400;

describe('intermediate rotation', () => {
  let tmp: string;
  let data: string;
  let offline: string;
  let dataDir: DataDir;
  const root = (): { rootCertPem: string; rootKeyPem: string } => ({ rootCertPem: readFileSync(join(offline, 'root-ca.pem'), 'utf8'), rootKeyPem: readFileSync(join(offline, 'root-ca.key'), 'utf8') });
  const signPending = (extra: Partial<Parameters<typeof signIntermediate>[0]> = {}) =>
    signIntermediate({ csrPem: dataDir.read('nextIntermediateCsr'), ...root(), lifetimeSeconds: 365 * DAY_S, replacesPem: dataDir.read('intermediateCert'), ...extra });

  beforeEach(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'tlsfleet-rotation-'));
    data = join(tmp, 'data');
    offline = join(tmp, 'offline');
    await initDataDir({ dataDir: data, trustDomain: 'fleet.test' });
    // The root key leaves the data dir, as the runbook says: signing happens "offline".
    mkdirSync(offline);
    renameSync(join(data, 'root-ca.key'), join(offline, 'root-ca.key'));
    copyFileSync(join(data, 'root-ca.pem'), join(offline, 'root-ca.pem'));
    dataDir = DataDir.open(data);
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('requests a 0600 key and a CSR, and refuses a second request while one is pending', async () => {
    await requestIntermediate(dataDir);
    expect(statSync(dataDir.path('nextIntermediateKey')).mode & 0o777).toBe(0o600);
    expect(dataDir.read('nextIntermediateCsr')).toMatch(/BEGIN CERTIFICATE REQUEST/);
    const before = snapshot(data);
    expect(await codeOf(requestIntermediate(dataDir))).toBe('pending_exists');
    expect(snapshot(data)).toEqual(before);
  });

  it('signs an intermediate with the identity and constraints of the command, not of the CSR', async () => {
    await requestIntermediate(dataDir);
    const cert = new X509Certificate(await signPending({ subject: 'CN=tlsfleet intermediate CA 2, O=fleet.test' }));
    expect(cert.subject).toBe('CN=tlsfleet intermediate CA 2\nO=fleet.test');
    expect(cert.ca).toBe(true);
    expect(cert.verify(new X509Certificate(root().rootCertPem).publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(dataDir.readSecret('nextIntermediateKey')))).toBe(true);
    expect(cert.toLegacyObject().ext_key_usage).toBeUndefined();
  });

  it('refuses a CSR that is garbage or whose signature does not verify', async () => {
    expect(await codeOf(signIntermediate({ csrPem: 'not a csr', ...root(), lifetimeSeconds: DAY_S }))).toBe('invalid_csr');
    const der = Buffer.from(makeTestCsr().der);
    der[der.length - 5] = (der[der.length - 5] as number) ^ 0xff; // break the signature
    expect(await codeOf(signIntermediate({ csrPem: derToPem(der, 'CERTIFICATE REQUEST'), ...root(), lifetimeSeconds: DAY_S }))).toBe('invalid_csr');
  });

  it('refuses to sign with an intermediate posing as the root, a key of another root, or past the root\'s end', async () => {
    await requestIntermediate(dataDir);
    const csrPem = dataDir.read('nextIntermediateCsr');
    const foreign = await initForeignRoot();
    const intermediate = { rootCertPem: readFileSync(join(foreign.dir, 'intermediate-ca.pem'), 'utf8'), rootKeyPem: readFileSync(join(foreign.dir, 'intermediate-ca.key'), 'utf8') };
    expect(await codeOf(signIntermediate({ csrPem, ...intermediate, lifetimeSeconds: DAY_S }))).toBe('invalid_root');
    expect(await codeOf(signIntermediate({ csrPem, rootCertPem: dataDir.read('intermediateCert'), rootKeyPem: root().rootKeyPem, lifetimeSeconds: DAY_S }))).toBe('invalid_root');
    expect(await codeOf(signIntermediate({ csrPem, ...root(), lifetimeSeconds: 11 * 365 * DAY_S }))).toBe('outlives_root');
  });

  it('refuses to install without a pending key, a certificate for another key, or one not signed by a root of the bundle', async () => {
    await requestIntermediate(dataDir);
    const signed = await signPending();
    rmSync(dataDir.path('nextIntermediateKey'));
    expect(await codeOf(installIntermediate(dataDir, signed))).toBe('no_pending_key');

    await requestIntermediate(dataDir); // a new key: `signed` no longer matches
    const before = snapshot(data);
    expect(await codeOf(installIntermediate(dataDir, signed))).toBe('key_mismatch');
    expect(await codeOf(installIntermediate(dataDir, 'garbage'))).toBe('invalid_certificate');
    expect(await codeOf(installIntermediate(dataDir, dataDir.read('intermediateCert')))).toBe('key_mismatch');

    // Signed by a root this data dir does not trust.
    const { rootCertPem, rootKeyPem } = await initForeignRoot();
    expect(await codeOf(installIntermediate(dataDir, await signIntermediate({ csrPem: dataDir.read('nextIntermediateCsr'), rootCertPem, rootKeyPem, lifetimeSeconds: DAY_S })))).toBe(
      'not_signed_by_root',
    );
    expect(await codeOf(installIntermediate(dataDir, await signPending({ now: () => Date.now() - 400 * DAY_S * 1000 })))).toBe('not_valid_now');
    expect(snapshot(data)).toEqual(before);
  });

  it('installs: the new one signs, the previous one is kept and trusted, server certificates move, a second install waits for retire', async () => {
    const previousPem = dataDir.read('intermediateCert');
    const previousKey = dataDir.readSecret('intermediateKey');
    await requestIntermediate(dataDir);
    const signed = await signPending();
    await installIntermediate(dataDir, signed);

    expect(dataDir.read('intermediateCert')).toBe(signed);
    expect(dataDir.read('previousIntermediateCert').trim()).toBe(previousPem.trim());
    expect(dataDir.readSecret('previousIntermediateKey')).toBe(previousKey);
    expect(statSync(dataDir.path('intermediateKey')).mode & 0o777).toBe(0o600);
    expect(statSync(dataDir.path('previousIntermediateKey')).mode & 0o777).toBe(0o600);
    expect(dataDir.has('nextIntermediateKey') || dataDir.has('nextIntermediateCsr')).toBe(false);
    const bundle = pemX509Certificates(dataDir.read('caBundle'));
    const fingerprints = (pem: string) => new X509Certificate(pem).fingerprint256;
    expect(bundle.map((c) => c.fingerprint256)).toEqual([fingerprints(root().rootCertPem), fingerprints(signed), fingerprints(previousPem)]);
    const newCa = new X509Certificate(signed);
    for (const file of ['brokerCert', 'provisioningCert', 'adminCert'] as const) {
      const leaf = new X509Certificate(pemCertificates(dataDir.read(file))[0] as Buffer);
      expect(leaf.checkIssued(newCa) && leaf.verify(newCa.publicKey)).toBe(true);
    }

    await requestIntermediate(dataDir);
    expect(await codeOf(installIntermediate(dataDir, await signPending()))).toBe('previous_not_retired');
  });

  it('publishes a CRL per intermediate while both live, each listing the revoked serials', async () => {
    const store = SqliteStore.open(dataDir.path('database'));
    try {
      await requestIntermediate(dataDir);
      await installIntermediate(dataDir, await signPending());
      const authority = authorityFromDataDir(DataDir.open(data), store);
      const current = await authority.crl();
      const previous = await authority.previousCrl();
      expect(previous).toBeDefined();
      expect(previous!.number).not.toBe(current.number);
    } finally {
      await store.close();
    }
  });

  it('refuses to retire too early with the date, then retires once the last certificate of the previous intermediate has expired', async () => {
    const store = SqliteStore.open(dataDir.path('database'));
    try {
      let now = Date.now();
      const old = authorityFromDataDir(dataDir, store, { now: () => now });
      const { token } = await old.mintToken({ subject: 'sensor-1', certTtlSeconds: 3600, createdBy: 'test' });
      const issued = await old.enroll(token, makeTestCsr().der);
      expect(await codeOf(retireIntermediate(dataDir, store))).toBe('no_previous');

      await requestIntermediate(dataDir);
      await installIntermediate(dataDir, await signPending());
      const before = snapshot(data);
      await expect(retireIntermediate(dataDir, store, { now: () => now })).rejects.toThrow(issued.notAfter.toISOString());
      expect(snapshot(data)).toEqual(before);

      now = issued.notAfter.getTime();
      const retired = await retireIntermediate(dataDir, store, { now: () => now });
      expect(retired.stillLive).toBe(0);
      expect(pemCertificates(dataDir.read('caBundle'))).toHaveLength(2);
      expect(dataDir.has('previousIntermediateCert') || dataDir.has('previousIntermediateKey') || dataDir.has('previousCrl')).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('retires early with force and says how many certificates it leaves valid', async () => {
    const store = SqliteStore.open(dataDir.path('database'));
    try {
      const old = authorityFromDataDir(dataDir, store);
      const { token } = await old.mintToken({ subject: 'sensor-1', certTtlSeconds: 3600, createdBy: 'test' });
      await old.enroll(token, makeTestCsr().der);
      await requestIntermediate(dataDir);
      await installIntermediate(dataDir, await signPending());
      expect((await retireIntermediate(dataDir, store, { force: true })).stillLive).toBe(1);
      expect(dataDir.has('previousIntermediateCert')).toBe(false);
    } finally {
      await store.close();
    }
  });

  /** Another data dir's root, which this one does not trust. */
  async function initForeignRoot(): Promise<{ dir: string; rootCertPem: string; rootKeyPem: string }> {
    const dir = join(tmp, `foreign-${readdirSync(tmp).length}`);
    await initDataDir({ dataDir: dir, trustDomain: 'foreign.test' });
    return { dir, rootCertPem: readFileSync(join(dir, 'root-ca.pem'), 'utf8'), rootKeyPem: readFileSync(join(dir, 'root-ca.key'), 'utf8') };
  }
});
