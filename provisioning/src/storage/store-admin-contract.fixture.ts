import { beforeEach, describe, expect, it } from 'vitest';
import type { Enrollment, Store } from './store.js';

/**
 * The admin half of the Store contract (issue 20: paging, per-certificate revocation, audit
 * pages, retention), run against every implementation by describeStoreContract.
 */
export function describeAdminStoreContract(current: () => Store): void {
  describe('admin queries', () => {
    let store: Store;
    beforeEach(() => {
      store = current();
    });

    /** Enrolls `id` with one certificate `serial` valid until `notAfter`. */
    async function enroll(id: string, serial: string, notAfter = 9_000, issuerKeyId?: string): Promise<void> {
      await store.createToken({ hash: `t-${serial}`, subject: id, kind: 'device', expiresAt: 2_000, certTtlSeconds: 60, createdAt: 1_000, createdBy: 'test' });
      const e: Enrollment = {
        tokenHash: `t-${serial}`,
        spkiHash: `spki-${serial}`,
        device: { id, kind: 'device', createdAt: 1_500, certTtlSeconds: 60 },
        certificate: { serial, subject: id, kind: 'device', spkiHash: `spki-${serial}`, pem: 'PEM', notBefore: 1_000, notAfter, issuedAt: 1_500, issuedBy: 'test', ...(issuerKeyId === undefined ? {} : { issuerKeyId }) },
      };
      expect(await store.recordEnrollment(e)).toBe(true);
    }

    async function allPages(limit: number, filter: { status?: 'active' | 'revoked' | 'expired'; expiringBefore?: number } = {}): Promise<string[][]> {
      const pages: string[][] = [];
      let after: string | undefined;
      for (;;) {
        const page = await store.listDevicePage({ after, limit, now: 5_000, ...filter });
        expect(page.length).toBeLessThanOrEqual(limit);
        if (page.length === 0) return pages;
        pages.push(page.map((d) => d.id));
        after = page.at(-1)?.id;
      }
    }

    it('pages through devices by id: each page at most `limit`, together every device once, in listDevices order', async () => {
      const ids = ['a', 'B', 'c-1', 'c.2', 'd_3', 'z', '0'];
      for (const [i, id] of ids.entries()) await enroll(id, `s${i}`);
      const pages = await allPages(3);
      expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
      expect(pages.flat()).toEqual((await store.listDevices()).map((d) => d.id));
    });

    it('filters pages by the status of the current certificate and by expiringBefore', async () => {
      await enroll('live', 'a1', 9_000);
      await enroll('old', 'a2', 4_000);
      await enroll('gone', 'a3', 9_000);
      await enroll('soon', 'a4', 6_000);
      expect(await store.revokeCertificate('a3', 3_000, 'admin', 'keyCompromise')).toMatchObject({ outcome: 'revoked' });
      const ids = async (f: Parameters<typeof allPages>[1]) => (await allPages(1, f)).flat().sort();
      expect(await ids({ status: 'active' })).toEqual(['live', 'soon']);
      expect(await ids({ status: 'expired' })).toEqual(['old']);
      expect(await ids({ status: 'revoked' })).toEqual(['gone']);
      expect(await ids({ expiringBefore: 7_000 })).toEqual(['old', 'soon']);
      expect(await ids({ status: 'active', expiringBefore: 7_000 })).toEqual(['soon']);
    });

    it('audits the fleet: current certificates expired, expiring and past their renewal point, tokens outstanding and expired', async () => {
      // Issued at 1,500 (enroll above): overdue past 1,500 + 3/4 of the rest (the latest renewal point).
      await enroll('live', 'f1', 90_000);
      await enroll('late', 'f2', 6_000); // overdue from 4,875: overdue at 5,000, expiring before 7,000
      await enroll('dead', 'f3', 4_000); // expired at 5,000
      await enroll('gone', 'f4', 6_000);
      expect(await store.revokeCertificate('f4', 3_000, 'admin', 'keyCompromise')).toMatchObject({ outcome: 'revoked' });
      await store.createToken({ hash: 'open', subject: 'next', kind: 'device', expiresAt: 9_000, certTtlSeconds: 60, createdAt: 1_000, createdBy: 'test' });
      await store.createToken({ hash: 'stale', subject: 'never', kind: 'device', expiresAt: 3_000, certTtlSeconds: 60, createdAt: 1_000, createdBy: 'test' });
      await enroll('moved', 'f5', 90_000, 'a1');
      await enroll('behind', 'f6', 90_000, 'b2');
      await enroll('behind-dead', 'f7', 3_000, 'b2');
      const audit = await store.fleetAudit({ now: 5_000, expiringBefore: 7_000, limit: 10, activeIssuerKeyId: 'a1' });
      expect(audit.expired).toEqual({
        count: 2,
        sample: [
          { subject: 'dead', serial: 'f3', notBefore: 1_000, notAfter: 4_000, issuedAt: 1_500 },
          { subject: 'behind-dead', serial: 'f7', notBefore: 1_000, notAfter: 3_000, issuedAt: 1_500 },
        ],
      });
      expect(audit.expiring).toEqual({ count: 1, sample: [{ subject: 'late', serial: 'f2', notBefore: 1_000, notAfter: 6_000, issuedAt: 1_500 }] });
      expect(audit.renewalOverdue).toEqual({ count: 1, sample: [{ subject: 'late', serial: 'f2', notBefore: 1_000, notAfter: 6_000, issuedAt: 1_500 }] });
      expect(audit.tokens).toEqual({ outstanding: 1, expired: 1 });
      // Live certificates of another signer; the three enrolled without one are unknown.
      expect(audit.retiredIssuer).toEqual({ count: 1, sample: [{ subject: 'behind', serial: 'f6', notBefore: 1_000, notAfter: 90_000, issuedAt: 1_500, issuerKeyId: 'b2' }], unknown: 2 });
      expect((await store.findCertificate('f5'))?.issuerKeyId).toBe('a1');
      const wide = await store.fleetAudit({ now: 5_000, expiringBefore: 100_000, limit: 0, activeIssuerKeyId: 'a1' });
      expect([wide.expiring.count, wide.expiring.sample]).toEqual([4, []]);
    });

    it('lists the certificates of a page without their PEMs', async () => {
      await enroll('p1', 'b1');
      await enroll('p2', 'b2');
      const certs = await store.listCertificatesOf(['p1', 'p2']);
      expect(certs.map((c) => c.serial).sort()).toEqual(['b1', 'b2']);
      expect(certs[0]).not.toHaveProperty('pem');
      expect(await store.listCertificatesOf([])).toEqual([]);
    });

    it('revokes one certificate with its reason once: audit, CRL entry and revocation version; again is `already`', async () => {
      await enroll('r1', 'c1');
      const v0 = await store.revocationVersion();
      const first = await store.revokeCertificate('c1', 3_000, 'admin', 'keyCompromise');
      expect(first.outcome).toBe('revoked');
      expect(first.certificate).toMatchObject({ serial: 'c1', revokedAt: 3_000, revokedBy: 'admin', revocationReason: 'keyCompromise' });
      expect(await store.revocationVersion()).toBe(v0 + 1);
      expect(await store.listRevoked(5_000)).toEqual([{ serial: 'c1', revokedAt: 3_000, reason: 'keyCompromise' }]);
      const again = await store.revokeCertificate('c1', 4_000, 'other', 'superseded');
      expect(again.outcome).toBe('already');
      expect(again.certificate).toMatchObject({ revokedAt: 3_000, revocationReason: 'keyCompromise' });
      expect(await store.revocationVersion()).toBe(v0 + 1);
      expect(await store.revokeCertificate('ffff', 3_000, 'admin', 'unspecified')).toEqual({ outcome: 'not_found' });
      const audit = await store.listAuditPage({ limit: 100, deviceId: 'r1' });
      expect(audit.filter((e) => e.action === 'revoke')).toEqual([
        { id: expect.any(Number), at: 3_000, actor: 'admin', action: 'revoke', subject: 'r1', serial: 'c1', notAfter: undefined, reason: 'keyCompromise' },
      ]);
    });

    it('pages through the audit trail by record id, for everyone or one device', async () => {
      for (let i = 0; i < 5; i++) await enroll(i % 2 ? 'odd' : 'even', `e${i}`);
      const all = await store.listAudit();
      const pages: number[][] = [];
      let afterId: number | undefined;
      for (;;) {
        const page = await store.listAuditPage({ afterId, limit: 4 });
        if (page.length === 0) break;
        expect(page.length).toBeLessThanOrEqual(4);
        pages.push(page.map((e) => e.id));
        afterId = page.at(-1)?.id;
      }
      expect(pages.flat()).toHaveLength(all.length);
      expect(pages.flat()).toEqual([...pages.flat()].sort((x, y) => x - y));
      const odd = await store.listAuditPage({ limit: 100, deviceId: 'odd' });
      expect(odd.map(({ id: _id, ...e }) => e)).toEqual(await store.listAudit('odd'));
    });

    it('prunes certificates and tokens past the cutoff in batches, keeping current certificates, live tokens and the audit', async () => {
      await enroll('k1', 'f1', 3_000);
      // Two renewals: f1 and f2 are superseded, f3 is current.
      await store.recordRenewal({ serial: 'f2', subject: 'k1', kind: 'device', spkiHash: 'x2', pem: 'PEM', notBefore: 1_000, notAfter: 3_500, issuedAt: 2_000, issuedBy: 'renewal:f1' }, 'f1');
      await store.recordRenewal({ serial: 'f3', subject: 'k1', kind: 'device', spkiHash: 'x3', pem: 'PEM', notBefore: 1_000, notAfter: 3_600, issuedAt: 2_100, issuedBy: 'renewal:f2' }, 'f2');
      await store.revokeCertificate('f2', 2_200, 'admin', 'superseded');
      await store.createToken({ hash: 'live', subject: 'k2', kind: 'device', expiresAt: 50_000, certTtlSeconds: 60, createdAt: 1_000, createdBy: 'test' });
      await store.createToken({ hash: 'stale', subject: 'k3', kind: 'device', expiresAt: 2_500, certTtlSeconds: 60, createdAt: 1_000, createdBy: 'test' });
      const auditBefore = await store.listAudit();
      expect(await store.prune(3_000, 10)).toEqual({ certificates: 0, tokens: 2 }); // spent t-f1 (at 1,500) and stale
      expect(await store.prune(10_000, 1)).toEqual({ certificates: 1, tokens: 0 });
      expect(await store.prune(10_000, 1)).toEqual({ certificates: 1, tokens: 0 });
      expect(await store.prune(10_000, 10)).toEqual({ certificates: 0, tokens: 0 });
      expect((await store.listCertificates('k1')).map((c) => c.serial)).toEqual(['f3']);
      expect(await store.findToken('live')).toBeDefined();
      expect(await store.findToken('stale')).toBeUndefined();
      expect(await store.listAudit()).toEqual(auditBefore);
    });
  });
}
