import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startProvisioningProcess } from './harness/cli.js';
import { postJson, request } from './harness/https-client.js';
import { startPostgres, type PostgresServer } from './harness/postgres.js';
import { tempDir } from './harness/temp-dir.js';

// docs/reference/configuration.md: secrets come from files, never only from a command line. Here the
// PostgreSQL server checks its password (SCRAM), so a wrong or missing file really is refused.
describe('provisioning --store-password-file against a PostgreSQL server that checks passwords', () => {
  // URL-special characters, so the password must be percent-encoded into the URL correctly.
  const PASSWORD = 'p@ss w/rd:42#%';
  const tmp = tempDir('tlsfleet-pg-password-');
  const dataDir = join(tmp.path, 'data');
  let pg: PostgresServer;
  let storeUrl: string;
  const file = (name: string, text: string) => {
    const p = join(tmp.path, name);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  };

  beforeAll(async () => {
    pg = await startPostgres({ password: PASSWORD });
    await pg.createDatabase('fleet');
    // No password in the URL: it comes from the file.
    storeUrl = pg.url('fleet');
    const init = await runCli(['init', '--data-dir', dataDir]);
    expect(init.code, init.stderr).toBe(0);
  });
  afterAll(async () => {
    await pg?.stop();
    tmp.cleanup();
  });

  it('serves from the database with the password read from the file, and never prints it', async () => {
    const service = await startProvisioningProcess(dataDir, ['--store', storeUrl, '--store-password-file', file('pg-password', `${PASSWORD}\n`)]);
    try {
      const ca = readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8');
      const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
      expect((await request(`${service.url}/readyz`, { ca })).status).toBe(200);
      const minted = await postJson(`${service.url}/v1/tokens`, { deviceId: 'pw-1' }, { ca, headers: { authorization: `Bearer ${adminToken}` } });
      expect(minted.status, minted.text()).toBe(201);
      // The token is in the password-protected database, not in the data dir's SQLite file.
      expect(await pg.query('fleet', "SELECT count(*) FROM tokens WHERE subject = 'pw-1'")).toBe('1');
    } finally {
      expect(await service.stop()).toBe(0);
    }
    expect(service.output()).not.toContain(PASSWORD);
    expect(service.output()).not.toContain(encodeURIComponent(PASSWORD));
  });

  it.each([
    ['a wrong password file', () => ['--store-password-file', file('wrong-password', 'not-the-password-7\n')]],
    ['no password file', () => []],
  ])('refuses to start with %s: exit 1, the reason said, no password printed', async (_name, extra) => {
    const run = await runCli(['provisioning', '--data-dir', dataDir, '--port', '0', '--store', storeUrl, ...extra()]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/password authentication failed|password/i);
    for (const secret of [PASSWORD, encodeURIComponent(PASSWORD), 'not-the-password-7']) expect(run.stdout + run.stderr).not.toContain(secret);
  });
});
