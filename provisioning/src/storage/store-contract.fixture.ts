import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Enrollment, NewToken, Store } from './store.js';
import { describeAdminStoreContract } from './store-admin-contract.fixture.js';

/** One backing storage for one test: a fresh store on it, and a way to open a second handle. */
export interface StoreBacking {
  /** The store the test drives, on empty, fully migrated storage. */
  store: Store;
  /** Another store on the same storage, as a second process or instance would open it. */
  another(): Promise<Store>;
  /** Closes whatever the backing opened and removes its storage. */
  cleanup(): Promise<void>;
}

/**
 * The behaviour every Store must have, run against each implementation (the MQTT.js habit:
 * one contract suite, every transport). `backing` is called once per test.
 */
export function describeStoreContract(name: string, backing: () => Promise<StoreBacking>): void {
  describe(`${name}: the Store contract`, () => {
    let b: StoreBacking;
    let store: Store;
    beforeEach(async () => {
      b = await backing();
      store = b.store;
    });
    afterEach(async () => {
      await b.cleanup();
    });

    const token: NewToken = { hash: 'h1', subject: 'd1', kind: 'device', expiresAt: 2_000, certTtlSeconds: 60, createdAt: 1_000, createdBy: 'test' };
    const enrollment = (serial: string, tokenHash = 'h1', subject = 'd1'): Enrollment => ({
      tokenHash,
      spkiHash: `spki-${serial}`,
      device: { id: subject, kind: 'device', createdAt: 1_500, certTtlSeconds: 60 },
      certificate: { serial, subject, kind: 'device', spkiHash: `spki-${serial}`, pem: 'PEM', notBefore: 1_000, notAfter: 9_000, issuedAt: 1_500, issuedBy: `token:${tokenHash}` },
    });

    it('keeps a token with its times as numbers, and records its minting in the audit trail', async () => {
      await store.createToken(token);
      expect(await store.findToken('h1')).toEqual({ ...token, consumedAt: undefined, consumedSpkiHash: undefined, consumedSerial: undefined, cancelledAt: undefined });
      expect(await store.findToken('nope')).toBeUndefined();
      expect(await store.listAudit('d1')).toEqual([{ at: 1_000, actor: 'test', action: 'token', subject: 'd1', serial: undefined, notAfter: undefined }]);
    });

    it('spends a token once: a second enrollment with it records nothing', async () => {
      await store.createToken(token);
      expect(await store.recordEnrollment(enrollment('aa'))).toBe(true);
      expect(await store.recordEnrollment(enrollment('bb'))).toBe(false);
      expect((await store.listCertificates('d1')).map((c) => c.serial)).toEqual(['aa']);
      const spent = await store.findToken('h1');
      expect(spent?.consumedSerial).toBe('aa');
      expect(spent?.consumedAt).toBe(1_500);
      expect(spent?.consumedSpkiHash).toBe('spki-aa');
    });

    it('lets exactly one of many concurrent enrollments with one token through, across two handles', async () => {
      await store.createToken(token);
      const other = await b.another();
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? other : store).recordEnrollment(enrollment(`s${i}`))));
      await other.close();
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.listCertificates('d1')).toHaveLength(1);
      expect((await store.listAudit('d1')).filter((e) => e.action === 'issue')).toHaveLength(1);
    });

    it('refuses a second certificate with a serial already recorded, and keeps the token unspent', async () => {
      await store.createToken(token);
      await store.createToken({ ...token, hash: 'h2' });
      expect(await store.recordEnrollment(enrollment('aa'))).toBe(true);
      await expect(store.recordEnrollment(enrollment('aa', 'h2'))).rejects.toThrow();
      expect((await store.findToken('h2'))?.consumedAt).toBeUndefined();
    });

    it('records a device and its certificate with every field, and lists devices by id', async () => {
      await store.createToken(token);
      await store.createToken({ ...token, hash: 'h0', subject: 'd0' });
      await store.recordEnrollment(enrollment('aa'));
      await store.recordEnrollment(enrollment('bb', 'h0', 'd0'));
      expect(await store.findDevice('d1')).toEqual({ id: 'd1', kind: 'device', createdAt: 1_500, certTtlSeconds: 60, currentSerial: 'aa' });
      expect(await store.findDevice('nope')).toBeUndefined();
      expect((await store.listDevices()).map((d) => d.id)).toEqual(['d0', 'd1']);
      expect(await store.findCertificate('aa')).toEqual({ ...enrollment('aa').certificate, revokedAt: undefined, revokedBy: undefined });
      expect(await store.findCertificate('zz')).toBeUndefined();
    });

    it('records a renewal while the presented certificate is live and current, and makes the new one current', async () => {
      await store.createToken(token);
      await store.recordEnrollment(enrollment('aa'));
      const renewal = { ...enrollment('cc').certificate, issuedAt: 2_500, issuedBy: 'renewal:aa' };
      expect(await store.recordRenewal(renewal, 'aa')).toBe('recorded');
      expect((await store.listCertificates('d1')).map((c) => c.serial)).toEqual(['aa', 'cc']);
      expect((await store.listAudit('d1')).map((e) => e.action)).toEqual(['token', 'issue', 'renew']);
      expect((await store.findDevice('d1'))?.currentSerial).toBe('cc');
      expect((await store.findRenewalsOf('aa')).map((c) => c.serial)).toEqual(['cc']);
      expect(await store.findRenewalsOf('cc')).toEqual([]);
      expect(await store.recordRenewal({ ...renewal, serial: 'dd' }, 'unknown')).toBe('revoked');
    });

    it('refuses a second renewal of a superseded certificate, changing nothing', async () => {
      await store.createToken(token);
      await store.recordEnrollment(enrollment('aa'));
      const renewal = (serial: string, from: string) => ({ ...enrollment(serial).certificate, issuedAt: 2_500, issuedBy: `renewal:${from}` });
      expect(await store.recordRenewal(renewal('cc', 'aa'), 'aa')).toBe('recorded');
      expect(await store.recordRenewal(renewal('dd', 'aa'), 'aa')).toBe('superseded');
      expect(await store.findCertificate('dd')).toBeUndefined();
      expect(await store.recordRenewal(renewal('ee', 'cc'), 'cc')).toBe('recorded');
      expect((await store.findDevice('d1'))?.currentSerial).toBe('ee');
    });

    it('makes a later enrollment supersede the certificates of earlier ones', async () => {
      await store.createToken(token);
      await store.createToken({ ...token, hash: 'h2' });
      await store.recordEnrollment(enrollment('aa'));
      await store.recordEnrollment(enrollment('bb', 'h2'));
      expect((await store.findDevice('d1'))?.currentSerial).toBe('bb');
      expect(await store.recordRenewal({ ...enrollment('cc').certificate, issuedBy: 'renewal:aa' }, 'aa')).toBe('superseded');
    });

    it('lets exactly one of many concurrent renewals of one certificate through, across two handles', async () => {
      await store.createToken(token);
      await store.recordEnrollment(enrollment('aa'));
      const other = await b.another();
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => (i % 2 ? other : store).recordRenewal({ ...enrollment(`r${i}`).certificate, issuedBy: 'renewal:aa' }, 'aa')),
      );
      await other.close();
      expect(results.filter((r) => r === 'recorded')).toHaveLength(1);
      expect(results.filter((r) => r === 'superseded')).toHaveLength(11);
      expect(await store.findRenewalsOf('aa')).toHaveLength(1);
      expect((await store.findDevice('d1'))?.currentSerial).toBe((await store.findRenewalsOf('aa'))[0]?.serial);
    });

    it('refuses to enroll a name already enrolled as the other kind, keeping the token unspent', async () => {
      await store.createToken(token);
      await store.createToken({ ...token, hash: 'hs', kind: 'service' });
      await store.recordEnrollment(enrollment('aa'));
      const asService: Enrollment = {
        ...enrollment('ss', 'hs'),
        device: { id: 'd1', kind: 'service', createdAt: 1_500, certTtlSeconds: 60 },
        certificate: { ...enrollment('ss', 'hs').certificate, kind: 'service' },
      };
      await expect(store.recordEnrollment(asService)).rejects.toMatchObject({ code: 'invalid_request' });
      expect((await store.findToken('hs'))?.consumedAt).toBeUndefined();
      expect(await store.findCertificate('ss')).toBeUndefined();
      expect(await store.findDevice('d1')).toMatchObject({ kind: 'device', currentSerial: 'aa' });
    });

    it('lets exactly one kind win when a name is enrolled as a device and a service at once, across two handles', async () => {
      const other = await b.another();
      const names = Array.from({ length: 6 }, (_, i) => `n${i}`);
      for (const n of names) {
        await store.createToken({ ...token, hash: `d-${n}`, subject: n });
        await store.createToken({ ...token, hash: `s-${n}`, subject: n, kind: 'service' });
      }
      const as = (n: string, kind: 'device' | 'service'): Enrollment => ({
        tokenHash: `${kind[0]}-${n}`,
        spkiHash: `spki-${kind}-${n}`,
        device: { id: n, kind, createdAt: 1_500, certTtlSeconds: 60 },
        certificate: { ...enrollment(`${kind}-${n}`).certificate, subject: n, kind },
      });
      const results = await Promise.all(
        names.flatMap((n) => [store.recordEnrollment(as(n, 'device')), other.recordEnrollment(as(n, 'service'))].map((p) => p.then(() => 'won', (e: { code?: string }) => e.code))),
      );
      await other.close();
      for (let i = 0; i < names.length; i++) expect([results[2 * i], results[2 * i + 1]].sort()).toEqual(['invalid_request', 'won']);
      for (const n of names) {
        const kinds = new Set((await store.listCertificates(n)).map((c) => c.kind));
        expect(kinds).toEqual(new Set([(await store.findDevice(n))?.kind]));
      }
    });

    it('cancels the unspent tokens of a revoked device in the same step, and only those', async () => {
      await store.createToken(token);
      await store.createToken({ ...token, hash: 'h2' });
      await store.createToken({ ...token, hash: 'other', subject: 'd2' });
      await store.recordEnrollment(enrollment('aa'));
      expect(await store.revokeDevice('d1', 3_000, 'admin')).toEqual({ serials: ['aa'], tokensCancelled: 1 });
      expect((await store.findToken('h2'))?.cancelledAt).toBe(3_000);
      expect((await store.findToken('h1'))?.cancelledAt).toBeUndefined();
      expect((await store.findToken('other'))?.cancelledAt).toBeUndefined();
      expect(await store.recordEnrollment(enrollment('bb', 'h2'))).toBe(false);
      await store.createToken({ ...token, hash: 'h3', createdAt: 4_000 });
      expect(await store.recordEnrollment(enrollment('cc', 'h3'))).toBe(true);
      expect((await store.findDevice('d1'))?.currentSerial).toBe('cc');
    });

    it('cancels the tokens of a device that never enrolled, with one audit entry and no CRL change', async () => {
      await store.createToken(token);
      await store.createToken({ ...token, hash: 'h2' });
      const v0 = await store.revocationVersion();
      expect(await store.revokeDevice('d1', 3_000, 'admin')).toEqual({ serials: [], tokensCancelled: 2 });
      expect((await store.findToken('h1'))?.cancelledAt).toBe(3_000);
      expect(await store.revocationVersion()).toBe(v0);
      expect(await store.findDevice('d1')).toBeUndefined();
      expect(await store.listAudit('d1')).toContainEqual({ at: 3_000, actor: 'admin', action: 'revoke', subject: 'd1', serial: undefined, notAfter: undefined });
      expect(await store.revokeDevice('d1', 4_000, 'admin')).toEqual({ serials: [], tokensCancelled: 0 });
    });

    it('refuses a renewal when the presented certificate was revoked first, and bumps the revocation version', async () => {
      await store.createToken(token);
      await store.recordEnrollment(enrollment('aa'));
      const v0 = await store.revocationVersion();
      expect(await store.revokeDevice('d1', 3_000, 'admin')).toEqual({ serials: ['aa'], tokensCancelled: 0 });
      expect(await store.revocationVersion()).toBe(v0 + 1);
      const renewal = { ...enrollment('cc').certificate, issuedBy: 'renewal:aa' };
      expect(await store.recordRenewal(renewal, 'aa')).toBe('revoked');
      expect(await store.findCertificate('cc')).toBeUndefined();
      expect(await store.revokeDevice('d1', 4_000, 'admin')).toEqual({ serials: [], tokensCancelled: 0 });
      expect(await store.revocationVersion()).toBe(v0 + 1);
      expect(await store.findCertificate('aa')).toMatchObject({ revokedAt: 3_000, revokedBy: 'admin' });
      expect((await store.listAudit('d1')).at(-1)).toEqual({ at: 3_000, actor: 'admin', action: 'revoke', subject: 'd1', serial: 'aa', notAfter: undefined });
    });

    it('shows a revocation made through another handle in the revocation version and the revoked list', async () => {
      await store.createToken(token);
      await store.recordEnrollment(enrollment('aa'));
      const v0 = await store.revocationVersion();
      const other = await b.another();
      expect((await other.revokeDevice('d1', 3_000, 'other')).serials).toEqual(['aa']);
      await other.close();
      expect(await store.revocationVersion()).not.toBe(v0);
      expect((await store.listRevoked(5_000)).map((r) => r.serial)).toEqual(['aa']);
    });

    it('lists revoked certificates only until they expire, and numbers CRLs monotonically', async () => {
      await store.createToken(token);
      await store.recordEnrollment(enrollment('aa'));
      await store.revokeDevice('d1', 3_000, 'admin');
      expect(await store.listRevoked(8_999)).toEqual([{ serial: 'aa', revokedAt: 3_000 }]);
      expect(await store.listRevoked(9_000)).toEqual([]);
      const a = await store.nextCrlNumber();
      const b2 = await store.nextCrlNumber();
      expect(typeof a).toBe('bigint');
      expect(a).toBeGreaterThanOrEqual(1n);
      expect(b2).toBe(a + 1n);
      // Raised to a floor (the issuing time), then one above the last again even when the floor is lower.
      const floor = b2 + 1_000_000n;
      expect(await store.nextCrlNumber(floor)).toBe(floor);
      expect(await store.nextCrlNumber(floor - 5n)).toBe(floor + 1n);
    });

    it('answers ping while open', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
    describeAdminStoreContract(() => store);
  });
}
