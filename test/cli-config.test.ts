import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startService } from './harness/cli.js';
import { freePort } from './harness/free-port.js';
import { postJson } from './harness/https-client.js';
import { startRedis } from './harness/redis.js';
import { accepts } from './harness/listening-child.js';
import { tempDir } from './harness/temp-dir.js';

// docs/reference/configuration.md: every long flag of provisioning, broker and dev may come from
// TLSFLEET_<FLAG> or a YAML/JSON --config FILE; flag, then environment, then file, then default.
describe('configuration from the environment and --config files', () => {
  const tmp = tempDir('tlsfleet-cli-config-');
  const dataDir = join(tmp.path, 'data');
  const missingDir = join(tmp.path, 'absent');
  const file = (name: string, text: string) => {
    const p = join(tmp.path, name);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  };

  beforeAll(async () => {
    // Fixtures of the refusal cases below, written once: those cases run concurrently.
    file('typo.yaml', `data-dir: ${missingDir}\nport: 0\nmax-conections: 5\n`);
    file('bad-port.yaml', `data-dir: ${missingDir}\nport: http\n`);
    file('plain-file', '');
    const init = await runCli(['init', '--data-dir', dataDir]);
    expect(init.code, init.stderr).toBe(0);
  });
  afterAll(() => tmp.cleanup());

  async function distinctPorts(n: number): Promise<number[]> {
    const ports = new Set<number>();
    while (ports.size < n) ports.add(await freePort());
    return [...ports];
  }

  /** Starts the broker, answers which of `ports` it listens on, stops it. */
  async function brokerPort(args: string[], env: NodeJS.ProcessEnv, ports: number[]): Promise<number[]> {
    const broker = await startService(['broker', ...args], /broker listening/, { env });
    try {
      const open: number[] = [];
      for (const p of ports) if (await accepts(p)) open.push(p);
      return open;
    } finally {
      expect(await broker.stop()).toBe(0);
    }
  }

  it('starts the broker on the port of the flag over the environment, the environment over the file, the file over the default', async () => {
    const [fromFile, fromEnv, fromFlag] = (await distinctPorts(3)) as [number, number, number];
    const config = file('broker.yaml', `# keys are the long flag names\ndata-dir: ${dataDir}\nhost: 127.0.0.1\nport: ${fromFile}\n`);
    const all = [fromFile, fromEnv, fromFlag];
    expect(await brokerPort(['--config', config, '--port', String(fromFlag)], { TLSFLEET_PORT: String(fromEnv) }, all)).toEqual([fromFlag]);
    expect(await brokerPort(['--config', config], { TLSFLEET_PORT: String(fromEnv) }, all)).toEqual([fromEnv]);
    expect(await brokerPort([], { TLSFLEET_CONFIG: config }, all)).toEqual([fromFile]);
  });

  it('reads a YAML list for a repeatable flag and a boolean from the environment (PROXY protocol from a trusted proxy)', async () => {
    const [port, health] = (await distinctPorts(2)) as [number, number];
    const config = file('proxy.yaml', `data-dir: ${dataDir}\nport: ${port}\ntrusted-proxy:\n  - 10.9.0.0/16\n  - 127.0.0.1/32\n`);
    const broker = await startService(['broker', '--config', config, '--health-port', String(health)], /broker listening/, { env: { TLSFLEET_PROXY_PROTOCOL: 'true' } });
    try {
      // Without --proxy-protocol the broker would refuse --trusted-proxy at start; it listens, and says so.
      expect(broker.output()).toMatch(/10\.9\.0\.0\/16/);
      expect(broker.output()).toMatch(/127\.0\.0\.1\/32/);
    } finally {
      await broker.stop();
    }
  });

  it('serves provisioning from a JSON config with the admin token from TLSFLEET_ADMIN_TOKEN_FILE, refusing the data dir\'s', async () => {
    const [port] = (await distinctPorts(1)) as [number];
    const config = file('provisioning.json', JSON.stringify({ 'data-dir': dataDir, host: '127.0.0.1', port }, null, 2));
    const tokenFile = file('admin-token', 'tfa_operator-chosen-admin-token-0123456789\n');
    const service = await startService(['provisioning', '--config', config], /provisioning listening/, { env: { TLSFLEET_ADMIN_TOKEN_FILE: tokenFile } });
    try {
      const ca = readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8');
      const mint = (token: string) => postJson(`https://localhost:${port}/v1/tokens`, { deviceId: 'config-test' }, { ca, headers: { authorization: `Bearer ${token}` } });
      expect((await mint('tfa_operator-chosen-admin-token-0123456789')).status).toBe(201);
      expect([401, 403]).toContain((await mint(readFileSync(join(dataDir, 'admin.token'), 'utf8').trim())).status);
      expect(service.output()).not.toContain('operator-chosen-admin-token');
    } finally {
      await service.stop();
    }
  });

  it('joins a password-protected Redis with the password from TLSFLEET_CLUSTER_PASSWORD_FILE, never printing it', async () => {
    const redis = await startRedis({ args: ['--user', 'fleet', 'on', '>redis-pw-from-file-3', '~*', '&*', '+@all'] });
    try {
      const env = { TLSFLEET_CLUSTER: `redis://fleet@127.0.0.1:${redis.port}/2`, TLSFLEET_CLUSTER_PASSWORD_FILE: file('redis-password', 'redis-pw-from-file-3\n') };
      const broker = await startService(['broker', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0'], /broker listening/, { env });
      const code = await broker.stop();
      expect(code).toBe(0);
      expect(broker.output()).not.toContain('redis-pw-from-file-3');
      // The same URL with a wrong password file: Redis refuses, the broker says so and exits 1.
      const wrong = await runCli(['broker', '--data-dir', dataDir, '--port', '0'], { env: { ...env, TLSFLEET_CLUSTER_PASSWORD_FILE: file('wrong-password', 'not-it-8\n') } });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toContain('WRONGPASS');
      expect(wrong.stdout + wrong.stderr).not.toContain('not-it-8');
    } finally {
      await redis.stop();
    }
  });

  it.concurrent.each<[string, string[], Record<string, string>, RegExp]>([
    ['an unknown key in the file, with the nearest known one', ['broker', '--config', 'typo.yaml'], {}, /typo\.yaml:3: unknown key "max-conections" \(did you mean "max-connections"\?\)/],
    ['a bad value in the file', ['broker', '--config', 'bad-port.yaml'], {}, /bad-port\.yaml:2: port must be a port number from 0 to 65535, not "http"/],
    ['a bad value in the environment', ['broker', '--data-dir', missingDir], { TLSFLEET_PORT: 'http' }, /TLSFLEET_PORT: must be a port number from 0 to 65535, not "http"/],
    ['a bad boolean in the environment', ['broker', '--data-dir', missingDir], { TLSFLEET_PROXY_PROTOCOL: 'maybe' }, /TLSFLEET_PROXY_PROTOCOL: takes true or false/],
    // Under a plain file: were the value taken, dev could not make its data dir and would not serve.
    ['a bad port for dev in the environment', ['dev', '--data-dir', 'plain-file/data'], { TLSFLEET_HEALTH_PORT: '70000' }, /TLSFLEET_HEALTH_PORT: must be a port number/],
    ['a bad value on the command line', ['provisioning', '--data-dir', missingDir, '--max-inflight', '0'], {}, /--max-inflight must be a whole number ≥ 1, not "0"/],
    ['a missing config file', ['provisioning', '--data-dir', missingDir, '--config', 'absent.yaml'], {}, /--config .*absent\.yaml: no such file/],
    ['a missing admin token file', ['provisioning', '--data-dir', missingDir, '--admin-token-file', 'absent-token'], {}, /--admin-token-file .*absent-token: no such file/],
    ['a missing store password file', ['token', '--data-dir', missingDir, '--device', 'd', '--store', 'postgres://fleet@127.0.0.1:1/db', '--store-password-file', 'absent-pw'], {}, /--store-password-file .*absent-pw: no such file/],
  ])('exits 2 on %s, naming it and its source', async (_what, args, env, message) => {
    const r = await runCli(args.map((a) => (/^[a-z-]+\.yaml$|^absent|^plain-file/.test(a) ? join(tmp.path, a) : a)), { env });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('never repeats a password given in a store or cluster URL from the environment', async () => {
    const store = await runCli(['provisioning', '--data-dir', missingDir], { env: { TLSFLEET_STORE: 'mysql://fleet:hunter2-secret@db/fleet' } });
    expect(store.code).toBe(2);
    expect(store.stderr).toMatch(/TLSFLEET_STORE: /);
    const cluster = await runCli(['broker', '--data-dir', missingDir], { env: { TLSFLEET_CLUSTER: 'memcached://:hunter2-secret@cache' } });
    expect(cluster.code).toBe(2);
    expect(cluster.stderr).toMatch(/TLSFLEET_CLUSTER: /);
    expect(store.stderr + store.stdout + cluster.stderr + cluster.stdout).not.toContain('hunter2');
  });

  it('reads neither TLSFLEET_* nor a config file for commands that are not services', async () => {
    chmodSync(tmp.path, 0o700);
    const r = await runCli(['token', '--device', 'x'], { env: { TLSFLEET_DATA_DIR: dataDir } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--data-dir is required');
  });
});
