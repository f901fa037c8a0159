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
