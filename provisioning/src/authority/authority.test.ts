import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { identifyPeer, pemToDer, renewFraction, TlsfleetError, type PeerCertificate } from '@tlsfleet/common';
import { initDataDir } from '../init.js';
import { DataDir } from '../data-dir.js';
import { SqliteStore } from '../storage/sqlite-store.js';
import type { Authority } from './authority.js';
import { authorityFromDataDir } from '../data-dir-authority.js';
import { makeTestCsr } from './csr.fixture.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TD = 'fleet.test';

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof TlsfleetError) return err.code;
    throw err;
  }
}

describe('Authority', () => {
  let dir: string;
  let store: SqliteStore;
  let now: number;
  let authority: Authority;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tlsfleet-authority-'));
    now = Date.UTC(2026, 10, 22, 12, 0, 0);
    await initDataDir({ dataDir: join(dir, 'data'), trustDomain: TD, now: () => now });
    const dd = DataDir.open(join(dir, 'data'));
    store = SqliteStore.open(dd.path('database'));
    authority = authorityFromDataDir(dd, store, { now: () => now });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const mint = (subject = 'd1', extra: { ttlSeconds?: number; certTtlSeconds?: number } = {}) =>
    authority.mintToken({ subject, createdBy: 'test', ...extra }).then((t) => t.token);

  function peerOf(certificatePem: string): PeerCertificate {
    const p = identifyPeer(new X509Certificate(certificatePem), TD);
    if (typeof p === 'string') throw new Error(p);
    return p;
  }

  it('issues a certificate whose identity comes from the token, with renewAfter its serial\'s fraction (60-75 %) of its lifetime after issuance (36-45 minutes of 1 h)', async () => {
    const issued = await authority.enroll(await mint('sensor-7', { certTtlSeconds: 3600 }), makeTestCsr().der);
    expect(issued.identity).toEqual({ kind: 'device', name: 'sensor-7', trustDomain: TD });
    expect(issued.notAfter.getTime()).toBe(now + 3600_000);
    expect(issued.notBefore.getTime()).toBe(now - 300_000);
    // The 5-minute backdating is not counted: an operator reads "1 h → renews after 36 to 45 minutes".
    expect(issued.renewAfter.getTime()).toBe(Math.floor(now + 3600_000 * renewFraction(issued.serial)));
    expect(issued.renewAfter.getTime()).toBeGreaterThanOrEqual(now + 36 * 60_000);
    expect(issued.renewAfter.getTime()).toBeLessThan(now + 45 * 60_000);
    expect(peerOf(issued.certificatePem).identity.name).toBe('sensor-7');
  });

  it('never backdates a short-lived certificate by more than its lifetime, so renewAfter stays in the future', async () => {
    const issued = await authority.enroll(await mint('short', { certTtlSeconds: 30 }), makeTestCsr().der);
    expect(issued.notBefore.getTime()).toBe(now - 30_000);
    expect(issued.renewAfter.getTime()).toBe(Math.floor(now + 30_000 * renewFraction(issued.serial)));
    expect(issued.renewAfter.getTime()).toBeGreaterThanOrEqual(now + 18_000);
    expect(issued.renewAfter.getTime()).toBeLessThan(issued.notAfter.getTime());
  });

  it('refuses an expired token with token_expired and leaves it unspent', async () => {
    const token = await mint('d1', { ttlSeconds: 60 });
    now += 60_000;
    expect(await codeOf(authority.enroll(token, makeTestCsr().der))).toBe('token_expired');
    expect((await store.listDevices()).length).toBe(0);
  });

  it('answers the same certificate to a replay with the same key within ten minutes, and token_used after', async () => {
    const token = await mint();
    const csr = makeTestCsr();
    const first = await authority.enroll(token, csr.der);
    now += 9 * 60_000;
    const again = await authority.enroll(token, makeTestCsr(csr.privateKey).der);
    expect(again.replayed).toBe(true);
    expect(again.serial).toBe(first.serial);
    expect(await codeOf(authority.enroll(token, makeTestCsr().der))).toBe('token_used');
    now += 2 * 60_000;
    expect(await codeOf(authority.enroll(token, csr.der))).toBe('token_used');
    expect((await store.listCertificates('d1')).length).toBe(1);
  });

  it('does not spend the token when the key is refused', async () => {
    const token = await mint();
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    expect(await codeOf(authority.enroll(token, makeTestCsr(weak).der))).toBe('key_rejected');
    expect(await codeOf(authority.enroll(token, makeTestCsr().der))).toBe('ok');
  });

  it('lets exactly one of many concurrent enrollments with one token win', async () => {
    const token = await mint();
    const results = await Promise.all(Array.from({ length: 20 }, () => codeOf(authority.enroll(token, makeTestCsr().der))));
    expect(results.filter((r) => r === 'ok')).toHaveLength(1);
    expect(results.filter((r) => r === 'token_used')).toHaveLength(19);
    expect((await store.listCertificates('d1')).length).toBe(1);
  });

  it('renews with a fresh key for the same identity and profile, and refuses the current key', async () => {
    const first = await authority.enroll(await mint('d1', { certTtlSeconds: 600 }), makeTestCsr().der);
    const peer = peerOf(first.certificatePem);
    now += 400_000;
    const renewed = await authority.renew(peer, makeTestCsr().der);
    expect(renewed.identity.name).toBe('d1');
    expect(renewed.serial).not.toBe(first.serial);
    expect(renewed.notAfter.getTime()).toBe(now + 600_000);
    const sameKey = new X509Certificate(first.certificatePem).publicKey;
    expect(sameKey).toBeDefined();
  });

  it('refuses to renew with the key of the certificate being renewed', async () => {
    const csr = makeTestCsr();
    const first = await authority.enroll(await mint(), csr.der);
    expect(await codeOf(authority.renew(peerOf(first.certificatePem), makeTestCsr(csr.privateKey).der))).toBe('key_rejected');
  });

  it('refuses renewal once revoked, and lists revoked serials on the next CRL', async () => {
    const first = await authority.enroll(await mint(), makeTestCsr().der);
    const before = await authority.crl();
    expect(await authority.revoke('d1', 'test')).toEqual([first.serial]);
    expect(await codeOf(authority.renew(peerOf(first.certificatePem), makeTestCsr().der))).toBe('revoked');
    const after = await authority.crl();
    expect(after.number).toBeGreaterThan(before.number);
    expect(after.der.equals(before.der)).toBe(false);
    const audit = await store.listAudit('d1');
    expect(audit.map((a) => a.action)).toEqual(['token', 'issue', 'revoke']);
  });

  it('withdraws the tokens of a device that never enrolled, and answers not_found when there is nothing to revoke', async () => {
    const leaked = await mint('never-enrolled');
    expect(await authority.revoke('never-enrolled', 'admin')).toEqual([]);
    expect(await codeOf(authority.enroll(leaked, makeTestCsr().der))).toBe('invalid_token');
    expect(await codeOf(authority.revoke('never-enrolled', 'admin'))).toBe('not_found');
    expect(await codeOf(authority.revoke('nobody', 'admin'))).toBe('not_found');
    expect(await codeOf(authority.enroll(await mint('never-enrolled'), makeTestCsr().der))).toBe('ok');
  });

  it('sees a revocation made by another process sharing the store', async () => {
    const first = await authority.enroll(await mint(), makeTestCsr().der);
    const crl1 = await authority.crl();
    const other = SqliteStore.open(join(dir, 'data', 'tlsfleet.db'));
    await other.revokeDevice('d1', now, 'other-process');
    await other.close();
    const crl2 = await authority.crl();
    expect(crl2.number).toBeGreaterThan(crl1.number);
    expect((await store.listRevoked(now)).map((r) => r.serial)).toEqual([first.serial]);
  });

  it('refuses bad token requests without storing anything', async () => {
    for (const subject of ['a/b', 'a+b', 'a#', '$x', 'a\u0000b', 'x'.repeat(65), '']) {
      expect(await codeOf(authority.mintToken({ subject, createdBy: 't' }))).toBe('invalid_request');
    }
    expect(await codeOf(authority.mintToken({ subject: 'ok', ttlSeconds: 0, createdBy: 't' }))).toBe('invalid_request');
    expect(await codeOf(authority.mintToken({ subject: 'ok', certTtlSeconds: 1.5, createdBy: 't' }))).toBe('invalid_request');
    expect(await codeOf(authority.mintToken({ subject: 'ok', kind: 'admin' as never, createdBy: 't' }))).toBe('invalid_request');
    expect((await store.listAudit()).length).toBe(0);
  });

  it('keeps device ids and service names apart', async () => {
    await authority.enroll(await mint('shared'), makeTestCsr().der);
    expect(await codeOf(authority.mintToken({ subject: 'shared', kind: 'service', createdBy: 't' }))).toBe('invalid_request');
  });

  it('issues a service identity from a service token', async () => {
    const { token } = await authority.mintToken({ subject: 'ingest', kind: 'service', createdBy: 't' });
    const issued = await authority.enroll(token, makeTestCsr().der);
    expect(issued.identity.kind).toBe('service');
    expect(pemToDer(issued.certificatePem, 'CERTIFICATE')).toBeDefined();
    expect(new X509Certificate(issued.certificatePem).subjectAltName).toBe(`URI:spiffe://${TD}/service/ingest`);
  });
});
