import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CrlError, VerifiedCrl } from './crl.js';
import { OpensslPki } from './openssl-crl.fixture.js';
import { RevocationList, type Timers } from './revocation-list.js';

const HOUR_MS = 3600_000;

/** Timers that fire only when the test says so. */
class ManualTimers implements Timers {
  pending: Array<{ callback: () => void; ms: number }> = [];
  setTimeout(callback: () => void, ms: number): unknown {
    const timer = { callback, ms };
    this.pending.push(timer);
    return timer;
  }
  clearTimeout(handle: unknown): void {
    this.pending = this.pending.filter((t) => t !== handle);
  }
  fireAll(): void {
    const due = this.pending;
    this.pending = [];
    for (const t of due) t.callback();
  }
}

describe('RevocationList', () => {
  let pki: OpensslPki;
  let crl1: Buffer; // number 5: serials a1, b2; 1 h
  let crl2: Buffer; // number 6: a1, b2, c3
  let crl0: Buffer; // number 4: nothing revoked
  beforeAll(() => {
    pki = OpensslPki.create();
    crl0 = pki.crl({ number: 4n, hours: 1 });
    crl1 = pki.crl({ number: 5n, revoked: ['A1', 'B2'], hours: 1 });
    crl2 = pki.crl({ number: 6n, revoked: ['A1', 'B2', 'C3'], hours: 1 });
  });
  afterAll(() => pki?.remove());

  let clock: number;
  let timers: ManualTimers;
  let list: RevocationList;
  let updates: Array<ReadonlySet<string>>;
  let stale: VerifiedCrl[];
  let rejected: CrlError[];
  beforeEach(() => {
    clock = Date.now();
    timers = new ManualTimers();
    list = new RevocationList({ issuers: pki.issuers(), now: () => clock, timers });
    updates = [];
    stale = [];
    rejected = [];
    list.on('update', (s) => updates.push(s));
    list.on('stale', (c) => stale.push(c));
    list.on('rejected', (e) => rejected.push(e));
  });

  describe('loading', () => {
    it('is missing until a CRL is loaded, and revokes nothing meanwhile', () => {
      expect(list.state()).toBe('missing');
      expect(list.isRevoked('a1')).toBe(false);
    });

    it('puts a valid CRL in force and reports every serial as newly revoked', () => {
      expect(list.load(crl1)).toBe('accepted');
      expect(list.state()).toBe('fresh');
      expect(list.current?.number).toBe(5n);
      expect(updates).toEqual([new Set(['a1', 'b2'])]);
      expect(list.isRevoked('A1')).toBe(true);
      expect(list.isRevoked('00:b2')).toBe(true);
      expect(list.isRevoked('c3')).toBe(false);
    });

    it('reports only the serials a newer CRL adds', () => {
      list.load(crl1);
      expect(list.load(crl2)).toBe('accepted');
      expect(updates[1]).toEqual(new Set(['c3']));
      expect(list.isRevoked('c3')).toBe(true);
    });

    it('treats a CRL with the same number as a no-op', () => {
      list.load(crl1);
      expect(list.load(crl1)).toBe('unchanged');
      expect(updates).toHaveLength(1);
    });

    it('ignores a CRL with a lower number, keeping the newer one in force (rollback)', () => {
      list.load(crl2);
      expect(list.load(crl1)).toBe('older');
      expect(list.load(crl0)).toBe('older');
      expect(list.current?.number).toBe(6n);
      expect(list.isRevoked('c3')).toBe(true);
      expect(updates).toHaveLength(1);
      expect(rejected).toEqual([]);
    });

    it('rejects invalid input with an event and keeps the last good CRL', () => {
      list.load(crl1);
      const tampered = Buffer.from(crl2);
      tampered[tampered.length - 5]! ^= 0x01; // inside the signature
      expect(list.load(tampered)).toBe('rejected');
      expect(list.load(Buffer.from('not a crl'))).toBe('rejected');
      expect(list.load(pki.crl({ signer: 'impostor', number: 99n }))).toBe('rejected');
      expect(rejected.map((e) => e.code)).toEqual(['crl_invalid', 'crl_invalid', 'crl_invalid']);
      expect(list.current?.number).toBe(5n);
      expect(list.isRevoked('a1')).toBe(true);
    });

    it('forgets the CRL in force when its signer leaves the trust bundle, so a new CA can start at number 0', () => {
      list.load(crl2);
      list.setIssuers(pki.issuers().filter((c) => c.subject.includes('root')));
      expect(list.state()).toBe('missing');
      list.setIssuers(pki.issuers());
      expect(list.load(crl0)).toBe('accepted');
    });

    it('loads a CRL refused for its unknown issuer once a bundle reload trusts that issuer (rotation order)', () => {
      const root = pki.issuers().filter((c) => c.subject.includes('root'));
      list.setIssuers(root);
      expect(list.load(crl2)).toBe('rejected');
      expect(list.state()).toBe('missing');
      list.setIssuers(pki.issuers());
      expect(list.current?.number).toBe(6n);
      expect(list.isRevoked('c3')).toBe(true);
    });

    it('keeps the CRL in force when the bundle is reloaded with its signer still in it', () => {
      list.load(crl2);
      list.setIssuers(pki.issuers());
      expect(list.current?.number).toBe(6n);
    });
  });

  describe('staleness', () => {
    it('says stale once the clock passes nextUpdate, and keeps enforcing the CRL', () => {
      list.load(crl1);
      const nextUpdate = list.current!.nextUpdate!.getTime();
      expect(timers.pending.map((t) => t.ms)).toEqual([nextUpdate - clock]);
      expect(nextUpdate - clock).toBeGreaterThan(HOUR_MS - 60_000);

      clock = nextUpdate;
      timers.fireAll();
      expect(stale.map((c) => c.number)).toEqual([5n]);
      expect(list.state()).toBe('stale');
      expect(list.isRevoked('a1')).toBe(true);
    });

    it('re-arms when the timer fires early instead of calling a fresh CRL stale', () => {
      list.load(crl1);
      clock += 1000;
      timers.fireAll();
      expect(stale).toEqual([]);
      expect(list.state()).toBe('fresh');
      expect(timers.pending).toHaveLength(1);
    });

    it('turns fresh again when a newer CRL arrives, and drops the old alarm', () => {
      list.load(crl1);
      list.load(crl2);
      expect(timers.pending).toHaveLength(1);
      clock = list.current!.nextUpdate!.getTime() - 1;
      expect(list.state()).toBe('fresh');
    });

    it('accepts a CRL that is already past nextUpdate and says so at once', () => {
      clock += 2 * HOUR_MS;
      expect(list.load(crl1)).toBe('accepted');
      expect(updates).toHaveLength(1);
      expect(stale).toHaveLength(1);
      expect(list.state()).toBe('stale');
      expect(timers.pending).toEqual([]);
    });

    it('clamps a nextUpdate further away than setTimeout allows', () => {
      list.load(pki.crl({ number: 7n, hours: 24 * 40 }));
      expect(timers.pending[0]?.ms).toBe(2_147_483_647);
      timers.fireAll();
      expect(stale).toEqual([]);
      expect(timers.pending).toHaveLength(1);
    });

    it('stops its alarm on close', () => {
      list.load(crl1);
      list.close();
      expect(timers.pending).toEqual([]);
    });
  });
});
