import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from './sqlite-store.js';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.js';
import type { Enrollment } from './store.js';

describe('SqliteStore', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tlsfleet-store-'));
    file = join(dir, 'tlsfleet.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const token = { hash: 'h1', subject: 'd1', kind: 'device' as const, expiresAt: 2_000, certTtlSeconds: 60, createdAt: 1_000, createdBy: 'test' };
  const enrollment = (serial: string): Enrollment => ({
    tokenHash: 'h1',
    spkiHash: `spki-${serial}`,
    device: { id: 'd1', kind: 'device', createdAt: 1_500, certTtlSeconds: 60 },
    certificate: { serial, subject: 'd1', kind: 'device', spkiHash: `spki-${serial}`, pem: 'PEM', notBefore: 1_000, notAfter: 9_000, issuedAt: 1_500, issuedBy: 'token:h1' },
  });

  it('migrates a new file to the latest schema version, in WAL mode, and reopens it unchanged', async () => {
    const store = SqliteStore.open(file);
    await store.createToken(token);
    await store.close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_MIGRATIONS.length);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
    const again = SqliteStore.open(file);
    expect((await again.findToken('h1'))?.subject).toBe('d1');
    await again.close();
  });

  it('refuses a database written by a newer tlsfleet instead of guessing at its schema', () => {
    const db = new Database(file);
    db.pragma(`user_version = ${SQLITE_MIGRATIONS.length + 1}`);
    db.close();
    expect(() => SqliteStore.open(file)).toThrow(/newer than this tlsfleet/);
  });

  it('spends a token once: a second enrollment with it records nothing', async () => {
    const store = SqliteStore.open(file);
    await store.createToken(token);
    expect(await store.recordEnrollment(enrollment('aa'))).toBe(true);
    expect(await store.recordEnrollment(enrollment('bb'))).toBe(false);
    expect((await store.listCertificates('d1')).map((c) => c.serial)).toEqual(['aa']);
    expect((await store.findToken('h1'))?.consumedSerial).toBe('aa');
    await store.close();
  });

  it('refuses a renewal when the presented certificate was revoked first, and bumps the revocation version', async () => {
    const store = SqliteStore.open(file);
    await store.createToken(token);
    await store.recordEnrollment(enrollment('aa'));
    const v0 = await store.revocationVersion();
    expect(await store.revokeDevice('d1', 3_000, 'admin')).toEqual(['aa']);
    expect(await store.revocationVersion()).toBe(v0 + 1);
    const renewal = { ...enrollment('cc').certificate, issuedBy: 'renewal:aa' };
    expect(await store.recordRenewal(renewal, 'aa')).toBe(false);
    expect(await store.findCertificate('cc')).toBeUndefined();
    expect(await store.revokeDevice('d1', 4_000, 'admin')).toEqual([]);
    expect(await store.revocationVersion()).toBe(v0 + 1);
    await store.close();
  });

  it('lists revoked certificates only until they expire, and numbers CRLs monotonically', async () => {
    const store = SqliteStore.open(file);
    await store.createToken(token);
    await store.recordEnrollment(enrollment('aa'));
    await store.revokeDevice('d1', 3_000, 'admin');
    expect((await store.listRevoked(8_999)).map((r) => r.serial)).toEqual(['aa']);
    expect(await store.listRevoked(9_000)).toEqual([]);
    const a = await store.nextCrlNumber();
    const b = await store.nextCrlNumber();
    expect(b).toBe(a + 1n);
    await store.close();
  });
});
