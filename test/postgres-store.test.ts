import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore, POSTGRES_MIGRATIONS, POSTGRES_MIGRATIONS_TABLE, redactConnectionString } from '@tlsfleet/provisioning';
import { describeStoreContract } from '../provisioning/src/storage/store-contract.fixture.js';
import { startPostgres, type PostgresServer } from './harness/postgres.js';

// One throwaway server for the file; a fresh database for every test.
let server: PostgresServer;
let databases = 0;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

describeStoreContract('PostgresStore', async () => {
  const url = await server.createDatabase(`contract_${++databases}`);
  const store = await PostgresStore.open(url);
  return { store, another: () => PostgresStore.open(url), cleanup: () => store.close() };
});

describe('PostgresStore migrations', () => {
  it('applies each migration once when several instances start together on an empty database', async () => {
    const url = await server.createDatabase('migrate_race');
    const stores = await Promise.all(Array.from({ length: 6 }, () => PostgresStore.open(url)));
    await Promise.all(stores.map((s) => s.close()));
    const rows = await server.query('migrate_race', `SELECT version FROM ${POSTGRES_MIGRATIONS_TABLE} ORDER BY version`);
    expect(rows.split('\n').map(Number)).toEqual(POSTGRES_MIGRATIONS.map((_, i) => i + 1));
  });

  it('migrates a version 1 database: each device’s newest certificate becomes current, renewals learn their predecessor', async () => {
    await server.createDatabase('migrate_v1');
    await server.query(
      'migrate_v1',
      `${POSTGRES_MIGRATIONS[0]}
       CREATE TABLE ${POSTGRES_MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL);
       INSERT INTO ${POSTGRES_MIGRATIONS_TABLE} VALUES (1, 0);
       INSERT INTO devices VALUES ('d1', 'device', 1, 60);
       INSERT INTO certificates (serial, subject, kind, spki_hash, pem, not_before, not_after, issued_at, issued_by)
       VALUES ('aa', 'd1', 'device', 'k1', 'PEM', 1, 9, 1, 'token:x'), ('bb', 'd1', 'device', 'k2', 'PEM', 2, 9, 2, 'renewal:aa');`,
    );
    const store = await PostgresStore.open(server.url('migrate_v1'));
    try {
      expect((await store.findDevice('d1'))?.currentSerial).toBe('bb');
      expect((await store.findRenewalsOf('aa')).map((c) => c.serial)).toEqual(['bb']);
      const renewal = { serial: 'cc', subject: 'd1', kind: 'device' as const, spkiHash: 'k3', pem: 'PEM', notBefore: 3, notAfter: 9, issuedAt: 3, issuedBy: 'renewal:aa' };
      expect(await store.recordRenewal(renewal, 'aa')).toBe('superseded');
    } finally {
      await store.close();
    }
  });

  it('refuses a database migrated by a newer tlsfleet, naming the server without its password', async () => {
    const url = await server.createDatabase('migrate_newer');
    await (await PostgresStore.open(url)).close();
    await server.query('migrate_newer', `INSERT INTO ${POSTGRES_MIGRATIONS_TABLE} (version, applied_at) VALUES (${POSTGRES_MIGRATIONS.length + 1}, 0)`);
    const withPassword = server.url('migrate_newer', 'hunter2-secret');
    const err = await PostgresStore.open(withPassword).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/newer than this tlsfleet/);
    expect(err?.message).not.toContain('hunter2-secret');
    expect(err?.message).toContain('***');
  });

  it('names an unreachable server without its password', async () => {
    const err = await PostgresStore.open(`postgres://me:hunter2-secret@127.0.0.1:1/nothing`).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err?.message).not.toContain('hunter2-secret');
  });

  it('masks passwords in connection strings, including password= parameters', () => {
    expect(redactConnectionString('postgres://u:p%40ss@h:5432/db')).toBe('postgres://u:***@h:5432/db');
    expect(redactConnectionString('postgresql://u@h/db?password=x&sslmode=require')).toBe('postgresql://u@h/db?password=***&sslmode=require');
    expect(redactConnectionString('postgres://u@h/db')).toBe('postgres://u@h/db');
  });
});
