import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RetentionPruner } from './retention-pruner.js';
import { SqliteStore } from './storage/sqlite-store.js';
import type { PruneCount } from './storage/store.js';

const DAY = 86_400_000;

describe('RetentionPruner on a real SQLite store with a fake clock', () => {
  let dir: string;
  let store: SqliteStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tlsfleet-retention-'));
    store = SqliteStore.open(join(dir, 'tlsfleet.db'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Device `id` enrolled at day 0 with `renewals` renewals, each certificate living one day. */
  async function fleetDevice(id: string, renewals: number): Promise<void> {
    await store.createToken({ hash: `t-${id}`, subject: id, kind: 'device', expiresAt: DAY, certTtlSeconds: 86_400, createdAt: 0, createdBy: 'test' });
    const cert = (n: number) => ({ serial: `${id}-${n}`, subject: id, kind: 'device' as const, spkiHash: `k-${id}-${n}`, pem: 'PEM', notBefore: n * DAY, notAfter: (n + 1) * DAY, issuedAt: n * DAY, issuedBy: 'test' });
    await store.recordEnrollment({ tokenHash: `t-${id}`, spkiHash: `k-${id}-0`, device: { id, kind: 'device', createdAt: 0, certTtlSeconds: 86_400 }, certificate: cert(0) });
    for (let n = 1; n <= renewals; n++) expect(await store.recordRenewal(cert(n), `${id}-${n - 1}`)).toBe('recorded');
  }

  it('deletes in batches of `batch` until nothing is left, keeping current certificates, unexpired ones, live tokens and the audit', async () => {
    for (let i = 0; i < 4; i++) await fleetDevice(`dev-${i}`, 9); // 40 certificates, days 0..10
    await store.createToken({ hash: 'unspent', subject: 'later', kind: 'device', expiresAt: 2000 * DAY, certTtlSeconds: 60, createdAt: 0, createdBy: 'test' });
    const auditBefore = (await store.listAudit()).length;
    const batches: PruneCount[] = [];
    let now = 30 * DAY;
    const pruner = new RetentionPruner({ store, retentionMs: 25 * DAY, now: () => now, batch: 7, onPruned: (c) => batches.push(c) });
    // Cutoff day 5: certificates of days 0..3 (notAfter ≤ day 4 < 5) go: 4 per device, and the 4 spent tokens.
    expect(await pruner.sweep()).toEqual({ certificates: 16, tokens: 4 });
    expect(batches.every((b) => b.certificates <= 7 && b.tokens <= 7)).toBe(true);
    expect(batches.length).toBeGreaterThanOrEqual(3);
    now = 1000 * DAY;
    expect(await pruner.sweep()).toEqual({ certificates: 20, tokens: 0 });
    for (let i = 0; i < 4; i++) expect((await store.listCertificates(`dev-${i}`)).map((c) => c.serial)).toEqual([`dev-${i}-9`]);
    expect(await store.findToken('unspent')).toBeDefined();
    expect(await store.listAudit()).toHaveLength(auditBefore);
  });

  it('keeps a revoked certificate until it has expired past the retention', async () => {
    await fleetDevice('rev', 1);
    await store.revokeCertificate('rev-0', DAY / 2, 'admin', 'keyCompromise');
    const at = (now: number) => new RetentionPruner({ store, retentionMs: 2 * DAY, now: () => now }).sweep();
    expect((await at(2.5 * DAY)).certificates).toBe(0); // expired at day 1, only 1.5 days ago
    expect(await store.findCertificate('rev-0')).toBeDefined();
    expect((await at(3.5 * DAY)).certificates).toBe(1);
    expect(await store.findCertificate('rev-0')).toBeUndefined();
  });

  it('sweeps at start and stops cleanly', async () => {
    await fleetDevice('s', 2);
    const swept: PruneCount[] = [];
    const pruner = new RetentionPruner({ store, retentionMs: DAY, now: () => 10 * DAY, onPruned: (c) => swept.push(c) });
    pruner.start();
    await pruner.stop();
    expect(swept).toEqual([{ certificates: 2, tokens: 1 }]);
  });

  it('refuses a retention that is not positive', () => {
    expect(() => new RetentionPruner({ store, retentionMs: 0 })).toThrow(RangeError);
  });
});
