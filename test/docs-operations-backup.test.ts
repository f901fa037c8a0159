import { copyFileSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { enrollAt, mintToken, type DeviceCredentials } from './harness/broker-env.js';
import { startProvisioningProcess, type Service } from './harness/cli.js';
import { makeCsr, newKey } from './harness/csr.js';
import { startProvisioningEnv, type ProvisioningEnv } from './harness/fleet-env.js';
import { postJson, request } from './harness/https-client.js';
import { openssl, tool } from './harness/openssl.js';
import { postgresBinDir, startPostgres, type PostgresServer } from './harness/postgres.js';
import { recipe } from './harness/readme.js';

/** Runs a recipe of docs/operations.md with bash in strict mode and the given environment. */
function runRecipe(name: string, vars: Record<string, string>) {
  return tool('env', [...Object.entries(vars).map(([k, v]) => `${k}=${v}`), 'bash', '-euo', 'pipefail', '-c', recipe(name)]);
}

/** The cRLNumber and the revoked serials (upper-case hex) of a DER CRL, as openssl reads them. */
async function readCrl(der: Buffer): Promise<{ number: bigint; serials: string[] }> {
  const text = await openssl(['crl', '-inform', 'DER', '-noout', '-text'], der);
  expect(text.code).toBe(0);
  const number = /X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text.stdout)?.[1];
  expect(number).toBeDefined();
  const serials = [...text.stdout.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => hex(m[1]!));
  return { number: BigInt(number!), serials };
}

/** A serial as one spelling: upper case, no leading zeros. */
const hex = (serial: string) => serial.toUpperCase().replace(/^0+(?=.)/, '');

const sqlite = (db: string, sql: string) => tool('sqlite3', [db, sql]);

interface Lost {
  kept: DeviceCredentials;
  revoked: DeviceCredentials;
  later: DeviceCredentials;
  spentToken: string;
}

/**
 * After the backup, the original service revokes `later-1` (a revocation the restore loses)
 * and answers the CRL number running brokers then hold.
 */
async function revokeAfterBackup(env: ProvisioningEnv): Promise<bigint> {
  const revoke = await postJson(`${env.url}/v1/devices/later-1/revoke`, {}, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
  expect(revoke.status).toBe(200);
  return (await readCrl((await request(`${env.url}/v1/crl`, { ca: env.ca })).body)).number;
}

/**
 * What a service started on a restored store must know: the device, its certificate, the
 * spent token, the revocation; and a revocation made again there reaches brokers, its CRL
 * numbered above `held`, the number they hold from before the restore.
 */
async function expectRestored(url: string, env: ProvisioningEnv, { kept, revoked, spentToken, later }: Lost, held: bigint): Promise<void> {
  const device = await request(`${url}/v1/devices/kept-1`, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
  expect(device.status).toBe(200);
  expect(JSON.stringify(device.json())).toContain(kept.serial);
  const replay = await postJson(`${url}/v1/enroll`, { token: spentToken, csr: await makeCsr(newKey()) }, { ca: env.ca });
  expect(replay.status).toBe(409);
  expect(replay.json().error.code).toBe('token_used');
  // The device renews with the certificate the original service issued.
  const renewed = await postJson(`${url}/v1/renew`, { csr: await makeCsr(newKey()) }, { ca: env.ca, cert: kept.chain, key: kept.key });
  expect(renewed.status).toBe(201);
  expect(renewed.json().deviceId).toBe('kept-1');
  // The revoked device stays revoked, and the CRL numbering continues above the brokers'.
  const refused = await postJson(`${url}/v1/renew`, { csr: await makeCsr(newKey()) }, { ca: env.ca, cert: revoked.chain, key: revoked.key });
  expect(refused.json().error.code).toBe('revoked');
  const crl = await readCrl((await request(`${url}/v1/crl`, { ca: env.ca })).body);
  expect(crl.serials).toContain(hex(revoked.serial));
  expect(crl.serials).not.toContain(hex(later.serial));
  const again = await postJson(`${url}/v1/devices/later-1/revoke`, {}, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
  expect(again.status).toBe(200);
  const next = await readCrl((await request(`${url}/v1/crl`, { ca: env.ca })).body);
  expect(next.serials).toContain(hex(later.serial));
  expect(next.number).toBeGreaterThan(held);
}

/** Enrolls kept-1, enrolls spent-1 with a token kept for a replay, enrolls and revokes revoked-1. */
async function populate(env: ProvisioningEnv): Promise<Lost> {
  const kept = await enrollAt(env, 'kept-1');
  const spentToken = await mintToken(env, 'spent-1', 'device', 3600);
  expect((await postJson(`${env.url}/v1/enroll`, { token: spentToken, csr: await makeCsr(newKey()) }, { ca: env.ca })).status).toBe(201);
  const revoked = await enrollAt(env, 'revoked-1');
  const revoke = await postJson(`${env.url}/v1/devices/revoked-1/revoke`, {}, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
  expect(revoke.status).toBe(200);
  const later = await enrollAt(env, 'later-1');
  return { kept, revoked, later, spentToken };
}

describe('docs/operations.md: SQLite backup and restore recipes', () => {
  let env: ProvisioningEnv | undefined;
  let restoredService: Service | undefined;
  afterEach(async () => {
    await restoredService?.stop();
    await env?.stop();
    env = restoredService = undefined;
  });

  it('backs up a running service and restores a data dir whose service knows its devices, tokens and revocations', async () => {
    env = await startProvisioningEnv();
    const lost = await populate(env);
    const { revoked } = lost;

    // The enrollments sit in the WAL, not yet in tlsfleet.db: copying the main file alone loses them.
    const db = join(env.dataDir, 'tlsfleet.db');
    expect(statSync(`${db}-wal`).size).toBeGreaterThan(0);
    const naive = join(env.dir, 'naive-copy.db');
    copyFileSync(db, naive);
    expect((await sqlite(naive, "SELECT count(*) FROM devices WHERE id = 'kept-1'")).stdout.trim()).not.toBe('1');

    // The backup recipe, while the service runs.
    const backupDir = join(env.dir, 'backups');
    const backup = await runRecipe('backup-sqlite', { DATA_DIR: env.dataDir, BACKUP_DIR: backupDir });
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    const target = backup.stdout.trim().split('\n').at(-1)!;
    expect(target.startsWith(backupDir)).toBe(true);
    expect(statSync(target).mode & 0o077).toBe(0);
    expect(statSync(join(target, 'tlsfleet.db')).mode & 0o077).toBe(0);
    const members = (await tool('tar', ['-tzf', join(target, 'data-dir.tar.gz')])).stdout.split('\n');
    expect(members).toContain('./intermediate-ca.key');
    expect(members.some((m) => m.includes('tlsfleet.db'))).toBe(false);
    // Still serving: the snapshot did not block it.
    expect((await request(`${env.url}/readyz`, { ca: env.ca })).status).toBe(200);
    const liveCrl = await readCrl((await request(`${env.url}/v1/crl`, { ca: env.ca })).body);
    expect(liveCrl.serials).toContain(hex(revoked.serial));
    const held = await revokeAfterBackup(env);
    await env.service.stop();

    // The restore recipe, into a fresh directory.
    const restoredDir = join(env.dir, 'restored', 'data');
    const restore = await runRecipe('restore-sqlite', { BACKUP: target, DATA_DIR: restoredDir });
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    expect(statSync(join(restoredDir, 'intermediate-ca.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(restoredDir, 'ca-bundle.pem')).mode & 0o777).toBe(0o644);
    restoredService = await startProvisioningProcess(restoredDir);
    expect(readFileSync(join(restoredDir, 'admin.token'), 'utf8').trim()).toBe(env.adminToken);
    await expectRestored(restoredService.url, env, lost, held);
  });
});

describe('docs/operations.md: PostgreSQL backup and restore recipes', () => {
  let pg: PostgresServer | undefined;
  let env: ProvisioningEnv | undefined;
  let restoredService: Service | undefined;
  afterEach(async () => {
    await restoredService?.stop();
    await env?.stop();
    await pg?.stop();
    pg = env = restoredService = undefined;
  });

  it('dumps the store of a running instance and restores it into a new database a service then serves from', async () => {
    pg = await startPostgres();
    const store = await pg.createDatabase('tlsfleet');
    env = await startProvisioningEnv({ serviceArgs: ['--store', store] });
    const lost = await populate(env);
    // The server's own client tools: pg_dump must not be older than the server.
    const path = `${postgresBinDir()}:${process.env.PATH ?? ''}`;

    const backupDir = join(env.dir, 'backups');
    const backup = await runRecipe('backup-postgres', { PATH: path, STORE: store, BACKUP_DIR: backupDir });
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    const dumps = readdirSync(backupDir).filter((f) => f.endsWith('.dump'));
    expect(dumps).toHaveLength(1);
    expect(statSync(join(backupDir, dumps[0]!)).mode & 0o077).toBe(0);
    expect((await request(`${env.url}/readyz`, { ca: env.ca })).status).toBe(200);
    const held = await revokeAfterBackup(env);
    await env.service.stop();

    const restoredStore = await pg.createDatabase('tlsfleet_restored');
    const restore = await runRecipe('restore-postgres', {
      PATH: path, DUMP: join(backupDir, dumps[0]!), RESTORE_STORE: restoredStore,
    });
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    restoredService = await startProvisioningProcess(env.dataDir, ['--store', restoredStore]);
    await expectRestored(restoredService.url, env, lost, held);
  });
});
