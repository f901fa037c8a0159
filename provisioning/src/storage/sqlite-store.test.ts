import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from './sqlite-store.js';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.js';
import { describeStoreContract } from './store-contract.fixture.js';

describeStoreContract('SqliteStore', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tlsfleet-store-'));
  const file = join(dir, 'tlsfleet.db');
  const store = SqliteStore.open(file);
  return {
    store,
    another: async () => SqliteStore.open(file),
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteStore', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tlsfleet-store-'));
    file = join(dir, 'tlsfleet.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const token = { hash: 'h1', subject: 'd1', kind: 'device' as const, expiresAt: 2_000, certTtlSeconds: 60, createdAt: 1_000, createdBy: 'test' };

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

  it('migrates once when several processes open the same new file at the same moment', async () => {
    // Separate processes: one process's connections never interleave a migration.
    const built = new URL('../../dist/storage/sqlite-store.js', import.meta.url).href;
    const script = `const { SqliteStore } = await import(${JSON.stringify(built)}); await SqliteStore.open(${JSON.stringify(file)}).close();`;
    const runs = Array.from({ length: 6 }, () => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      return once(child, 'exit').then(([code]) => ({ code, stderr }));
    });
    for (const r of await Promise.all(runs)) expect(r, r.stderr).toEqual({ code: 0, stderr: '' });
    const db = new Database(file, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_MIGRATIONS.length);
    db.close();
  });

  it('creates the database and its -wal and -shm files owner-only in a 0755 folder, and tightens an older 0644 file', async () => {
    chmodSync(dir, 0o755);
    const store = SqliteStore.open(file);
    await store.createToken(token);
    const mode = (f: string) => (statSync(f).mode & 0o777).toString(8);
    expect([mode(file), mode(`${file}-wal`), mode(`${file}-shm`)]).toEqual(['600', '600', '600']);
    await store.close();
    const older = join(dir, 'older.db');
    writeFileSync(older, '', { mode: 0o644 });
    chmodSync(older, 0o644);
    await SqliteStore.open(older).close();
    expect(mode(older)).toBe('600');
  });

  it('migrates a version 1 database: each device’s newest certificate becomes current, renewals learn their predecessor', async () => {
    const db = new Database(file);
    db.exec(SQLITE_MIGRATIONS[0] as string);
    db.pragma('user_version = 1');
    db.exec(`INSERT INTO devices VALUES ('d1', 'device', 1, 60);
      INSERT INTO certificates (serial, subject, kind, spki_hash, pem, not_before, not_after, issued_at, issued_by)
      VALUES ('aa', 'd1', 'device', 'k1', 'PEM', 1, 9, 1, 'token:x'), ('bb', 'd1', 'device', 'k2', 'PEM', 2, 9, 2, 'renewal:aa');
      INSERT INTO tokens (hash, subject, kind, expires_at, cert_ttl_seconds, created_at, created_by) VALUES ('h9', 'd1', 'device', 9, 60, 1, 't');`);
    db.close();
    const store = SqliteStore.open(file);
    expect((await store.findDevice('d1'))?.currentSerial).toBe('bb');
    expect((await store.findRenewalsOf('aa')).map((c) => c.serial)).toEqual(['bb']);
    expect((await store.findToken('h9'))?.cancelledAt).toBeUndefined();
    expect(await store.recordRenewal({ serial: 'cc', subject: 'd1', kind: 'device', spkiHash: 'k3', pem: 'PEM', notBefore: 3, notAfter: 9, issuedAt: 3, issuedBy: 'renewal:aa' }, 'aa')).toBe('superseded');
    await store.close();
  });

  it('refuses a database written by a newer tlsfleet instead of guessing at its schema', () => {
    const db = new Database(file);
    db.pragma(`user_version = ${SQLITE_MIGRATIONS.length + 1}`);
    db.close();
    expect(() => SqliteStore.open(file)).toThrow(/newer than this tlsfleet/);
  });
});
