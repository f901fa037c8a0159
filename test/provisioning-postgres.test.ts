import 'reflect-metadata';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES_MIGRATIONS, POSTGRES_MIGRATIONS_TABLE } from '@tlsfleet/provisioning';
import { runCli, startProvisioningProcess, type Service } from './harness/cli.js';
import { makeCsr, newKey, type TestKey } from './harness/csr.js';
import { postJson, request } from './harness/https-client.js';
import { openssl } from './harness/openssl.js';
import { startPostgres, type PostgresServer } from './harness/postgres.js';
import { tempDir } from './harness/temp-dir.js';

// Two provisioning instances, one data dir (the CA) and one PostgreSQL database: what runs
// behind one load balancer. Every request below picks an instance on purpose.
describe('two provisioning instances on one PostgreSQL database', () => {
  const password = 'pw-that-must-never-be-logged';
  let pgServer: PostgresServer;
  let tmp: ReturnType<typeof tempDir>;
  let dataDir: string;
  let storeUrl: string;
  let a: Service;
  let b: Service;
  let ca: string;
  let adminToken: string;

  beforeAll(async () => {
    pgServer = await startPostgres();
    await pgServer.createDatabase('fleet');
    // Trust auth ignores the password; it is there to prove no log line carries it.
    storeUrl = pgServer.url('fleet', password);
    tmp = tempDir('tlsfleet-pg-e2e-');
    dataDir = join(tmp.path, 'data');
    const init = await runCli(['init', '--data-dir', dataDir]);
    expect(init.code, init.stderr).toBe(0);
    // Started together: both race for the migration lock on an empty database. These tests
    // send dozens of requests at once from 127.0.0.1 to prove the store's atomicity, so the
    // per-client admission limit (tested in provisioning-attack-*.test.ts) is off here.
    const flags = ['--store', storeUrl, '--max-inflight-per-client', '0'];
    [a, b] = await Promise.all([startProvisioningProcess(dataDir, flags), startProvisioningProcess(dataDir, flags)]);
    ca = readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8');
    adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await pgServer?.stop();
    tmp?.cleanup();
  });

  const admin = () => ({ authorization: `Bearer ${adminToken}` });
  const enroll = (s: Service, token: string, csr: string) => postJson(`${s.url}/v1/enroll`, { token, csr }, { ca });
  async function mint(s: Service, deviceId: string): Promise<string> {
    const res = await postJson(`${s.url}/v1/tokens`, { deviceId, certTtlSeconds: 3600 }, { ca, headers: admin() });
    expect(res.status).toBe(201);
    return res.json().token;
  }
  async function enrollDevice(s: Service, id: string): Promise<{ key: TestKey; chain: string; serial: string }> {
    const key = newKey();
    const res = await enroll(s, await mint(s, id), await makeCsr(key));
    expect(res.status).toBe(201);
    return { key, chain: res.json().chain, serial: res.json().serial };
  }
  async function crlText(s: Service): Promise<string> {
    const res = await request(`${s.url}/v1/crl`, { ca });
    expect(res.status).toBe(200);
    const file = join(tmp.path, `crl-${s.port}-${Date.now()}-${Math.random()}.der`);
    writeFileSync(file, res.body);
    const out = await openssl(['crl', '-inform', 'DER', '-in', file, '-CAfile', join(dataDir, 'intermediate-ca.pem'), '-noout', '-verify', '-text']);
    expect(out.stderr + out.stdout).toContain('verify OK');
    return out.stdout.toLowerCase().replace(/[:\s]/g, '');
  }
  const even = (serial: string) => serial.padStart(serial.length + (serial.length % 2), '0');

  it('migrated the schema once, though both instances started together', async () => {
    const versions = await pgServer.query('fleet', `SELECT version FROM ${POSTGRES_MIGRATIONS_TABLE} ORDER BY version`);
    expect(versions.split('\n').map(Number)).toEqual(POSTGRES_MIGRATIONS.map((_, i) => i + 1));
    const ready = await Promise.all([a, b].map((s) => request(`${s.url}/readyz`, { ca })));
    expect(ready.map((r) => r.status)).toEqual([200, 200]);
  });

  it('never prints the connection string with its password', () => {
    for (const s of [a, b]) {
      expect(s.output()).not.toContain(password);
      expect(s.output()).toContain('postgres://postgres:***@127.0.0.1');
    }
  });

  it('gives exactly one certificate for 50 concurrent enrollments with one token spread over both instances', async () => {
    const cli = await runCli(['token', '--data-dir', dataDir, '--device', 'racer', '--store', storeUrl]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stderr).not.toContain(password);
    const token = cli.stdout.trim();
    // 50 different keys: no answer can be the idempotent replay of the winner.
    const csrs = await Promise.all(Array.from({ length: 50 }, () => makeCsr(newKey())));
    const answers = await Promise.all(csrs.map((csr, i) => enroll(i % 2 ? b : a, token, csr)));
    expect(answers.filter((r) => r.status === 201)).toHaveLength(1);
    const losers = answers.filter((r) => r.status !== 201);
    expect(losers.map((r) => [r.status, r.json().error.code])).toEqual(losers.map(() => [409, 'token_used']));
    for (const s of [a, b]) {
      const device = await request(`${s.url}/v1/devices/racer`, { ca, headers: admin() });
      expect(device.json().certificates).toHaveLength(1);
    }
  });

  it('keeps serials unique across many enrollments spread over both instances', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `many-${i}`);
    const tokens = await Promise.all(ids.map((id, i) => mint(i % 2 ? a : b, id)));
    const answers = await Promise.all(ids.map(async (_, i) => enroll(i % 2 ? b : a, tokens[i] as string, await makeCsr(newKey()))));
    expect(answers.map((r) => r.status)).toEqual(ids.map(() => 201));
    const serials = answers.map((r) => r.json().serial as string);
    expect(new Set(serials).size).toBe(ids.length);
    const counted = await pgServer.query('fleet', "SELECT count(*), count(DISTINCT serial) FROM certificates WHERE subject LIKE 'many-%'");
    expect(counted).toBe(`${ids.length}|${ids.length}`);
  });

  it('shows a revocation made through A in B’s CRL and device record at once', async () => {
    const d = await enrollDevice(a, 'revoked-on-a');
    expect(await crlText(b)).not.toContain(even(d.serial));
    const res = await postJson(`${a.url}/v1/devices/revoked-on-a/revoke`, {}, { ca, headers: admin() });
    expect(res.status).toBe(200);
    expect(await crlText(b)).toContain(even(d.serial));
    const device = await request(`${b.url}/v1/devices/revoked-on-a`, { ca, headers: admin() });
    expect(device.json().certificates.map((c: { serial: string; status: string }) => [c.serial, c.status])).toEqual([[d.serial, 'revoked']]);
    const renewed = await postJson(`${b.url}/v1/renew`, { csr: await makeCsr(newKey()) }, { ca, cert: d.chain, key: d.key.privatePem });
    expect(renewed.status).toBe(403);
    expect(renewed.json().error.code).toBe('revoked');
  });

  it('renews through B a certificate issued by A', async () => {
    const d = await enrollDevice(a, 'renew-across');
    const res = await postJson(`${b.url}/v1/renew`, { csr: await makeCsr(newKey()) }, { ca, cert: d.chain, key: d.key.privatePem });
    expect(res.status).toBe(201);
    expect(res.json().deviceId).toBe('renew-across');
    expect(res.json().serial).not.toBe(d.serial);
    const device = await request(`${a.url}/v1/devices/renew-across`, { ca, headers: admin() });
    expect(device.json().certificates.map((c: { serial: string }) => c.serial).sort()).toEqual([d.serial, res.json().serial].sort());
  });

  it('sees `tlsfleet revoke --store postgres://...` in both instances’ next CRL', async () => {
    const d = await enrollDevice(b, 'revoked-offline');
    const r = await runCli(['revoke', '--data-dir', dataDir, '--device', 'revoked-offline', '--store', storeUrl]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(d.serial);
    expect(r.stdout + r.stderr).not.toContain(password);
    for (const s of [a, b]) expect(await crlText(s)).toContain(even(d.serial));
  });
});
