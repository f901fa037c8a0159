import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectionCapBelow } from '@tlsfleet/common';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, runCli, startService } from './harness/cli.js';
import { tempDir } from './harness/temp-dir.js';

// deploy/systemd/: the units an operator installs. systemd-analyze (Debian's systemd
// package, installed by scripts/install-peers.mjs) checks them as systemd would load them;
// it needs ExecStart's program to exist, so the copies it reads run this checkout's CLI.

const UNITS_DIR = fileURLToPath(new URL('../deploy/systemd/', import.meta.url));
const INSTALLED_CLI = '/usr/local/bin/tlsfleet';
const UNITS = ['tlsfleet-provisioning.service', 'tlsfleet-broker.service', 'tlsfleet-agent@.service'];

/** Every `Key=value` of a unit file, in order (comments and section headers dropped). */
function settings(unit: string): [string, string][] {
  return readFileSync(join(UNITS_DIR, unit), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}
const valuesOf = (unit: string, key: string) => settings(unit).filter(([k]) => k === key).map(([, v]) => v);
/** The unit's `Environment=NAME=value` pairs, with %S (the state directory root) as `stateRoot`. */
function environment(unit: string, stateRoot: string): Record<string, string> {
  return Object.fromEntries(valuesOf(unit, 'Environment').map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1).replaceAll('%S', stateRoot)]));
}

const tmp = tempDir('tlsfleet-systemd-');
afterAll(() => tmp.cleanup());

/** The units as systemd-analyze reads them: a copy whose ExecStart runs this checkout's CLI. */
function unitCopies(): string {
  const dir = join(tmp.path, 'units');
  mkdirSync(dir, { recursive: true });
  for (const unit of readdirSync(UNITS_DIR).filter((f) => f.endsWith('.service'))) {
    writeFileSync(join(dir, unit), readFileSync(join(UNITS_DIR, unit), 'utf8').replaceAll(INSTALLED_CLI, CLI));
  }
  return dir;
}

const systemdVersion = Number(/systemd (\d+)/.exec(spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).stdout)?.[1]);
/** Exponential restart backoff (RestartSteps, RestartMaxDelaySec) came in systemd 254; older ones warn and restart at the fixed RestartSec. */
const newerKeys = /: Unknown key '(RestartSteps|RestartMaxDelaySec)' in section \[Service\], ignoring\.$/;

describe('deploy/systemd units', () => {
  it('ship a unit for provisioning, the broker and the device agent, and example env files', () => {
    const files = readdirSync(UNITS_DIR);
    expect(files).toEqual(expect.arrayContaining([...UNITS, 'provisioning.env.example', 'broker.env.example', 'agent.env.example']));
  });

  it('pass systemd-analyze verify without a warning', () => {
    const dir = unitCopies();
    expect(systemdVersion).toBeGreaterThan(0);
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...['tlsfleet-provisioning.service', 'tlsfleet-broker.service', 'tlsfleet-agent@demo.service'].map((u) => join(dir, u))], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const warnings = r.stderr.split('\n').filter((l) => l !== '' && !(systemdVersion < 254 && newerKeys.test(l)));
    expect(warnings).toEqual([]);
  });

  it.each(['tlsfleet-provisioning.service', 'tlsfleet-broker.service', 'tlsfleet-agent@demo.service'])('%s is sandboxed: systemd-analyze security rates its exposure at most 2.0', (unit) => {
    const dir = unitCopies();
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', '--threshold=20', join(dir, unit)], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Overall exposure level for .*: [0-2]\.\d/);
  });

  it.each(UNITS)('%s restarts on failure with a delay, runs as a dynamic user with its state in StateDirectory, locked down, and reads an optional env file', (unit) => {
    const one = (key: string) => valuesOf(unit, key).at(-1);
    expect(one('ExecStart')!.split(' ')[0]).toBe(INSTALLED_CLI);
    expect(one('Restart')).toBe('on-failure');
    expect(one('RestartSec')).toMatch(/^\d+s$/);
    expect(one('RestartSteps')).toMatch(/^\d+$/);
    expect(one('RestartMaxDelaySec')).toMatch(/^\d+min$/);
    expect(valuesOf(unit, 'RestartPreventExitStatus').join(' ')).toMatch(/\b2\b/); // a usage or configuration error
    expect(one('DynamicUser')).toBe('yes');
    expect(one('StateDirectory')).toMatch(/^tlsfleet/);
    for (const [key, value] of [['ProtectSystem', 'strict'], ['NoNewPrivileges', 'yes'], ['PrivateTmp', 'yes'], ['ProtectHome', 'yes'], ['CapabilityBoundingSet', ''], ['AmbientCapabilities', '']]) {
      expect(one(key!), `${unit}: ${key}`).toBe(value);
    }
    expect(valuesOf(unit, 'EnvironmentFile').every((f) => f.startsWith('-/etc/tlsfleet/') && f.endsWith('.env'))).toBe(true);
    expect(valuesOf(unit, 'EnvironmentFile').length).toBeGreaterThan(0);
    expect(Number(one('LimitNOFILE'))).toBeGreaterThan(0);
  });

  it('the broker reloads on systemctl reload (SIGHUP), and shares the data dir and user with provisioning', () => {
    expect(valuesOf('tlsfleet-broker.service', 'ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    for (const key of ['User', 'StateDirectory']) expect(valuesOf('tlsfleet-broker.service', key)).toEqual(valuesOf('tlsfleet-provisioning.service', key));
    for (const unit of ['tlsfleet-provisioning.service', 'tlsfleet-broker.service']) {
      expect(valuesOf(unit, 'ExecStart')[0]).toContain(` --data-dir %S/${valuesOf(unit, 'StateDirectory')[0]}`);
    }
  });

  // What systemd runs: ExecStart's command line (%S the state root) with the unit's
  // Environment=, moved to free loopback ports; SIGTERM (systemd's stop) ends it with 0,
  // so Restart=on-failure leaves a stopped service stopped.
  it.each([
    ['tlsfleet-provisioning.service', 'provisioning listening', []],
    ['tlsfleet-broker.service', 'broker listening', ['--health-port', '0']],
  ] as const)('%s: its command line and environment start the service on a data dir made by tlsfleet init with its max-connections, and SIGTERM stops it with 0', async (unit, listening, extra) => {
    const stateRoot = join(tmp.path, `state-${unit}`);
    const [program, ...args] = valuesOf(unit, 'ExecStart')[0]!.replaceAll('%S', stateRoot).split(' ');
    expect(program).toBe(INSTALLED_CLI);
    const init = await runCli(['init', '--data-dir', join(stateRoot, valuesOf(unit, 'StateDirectory')[0]!)]);
    expect(init.code, init.stderr).toBe(0);
    const service = await startService([...args, '--host', '127.0.0.1', '--port', '0', ...extra], new RegExp(`"msg":"${listening}"`), { env: environment(unit, stateRoot) });
    const ready = service.output().split('\n').find((l) => l.includes(`"msg":"${listening}"`))!;
    expect((JSON.parse(ready) as { maxConnections: number }).maxConnections).toBe(Number(environment(unit, stateRoot).TLSFLEET_MAX_CONNECTIONS));
    expect(await service.stop()).toBe(0);
  });

  // The services keep max(64, 10 %) of the open-file limit back from connections
  // (common/src/fd-limit.ts, the function they call): under LimitNOFILE, the unit's
  // max-connections must fit, with no more than that reserve to spare.
  it.each(['tlsfleet-provisioning.service', 'tlsfleet-broker.service'])('%s: LimitNOFILE leaves room for its max-connections once the reserve is kept back', (unit) => {
    const limit = Number(valuesOf(unit, 'LimitNOFILE')[0]);
    const asked = Number(environment(unit, '/var/lib').TLSFLEET_MAX_CONNECTIONS);
    expect(asked).toBeGreaterThan(0);
    expect(connectionCapBelow({ soft: limit, hard: limit }, Infinity)).toBeGreaterThanOrEqual(asked);
    expect(connectionCapBelow({ soft: limit, hard: limit }, Infinity)).toBeLessThan(asked * 1.5); // matched, not merely large
  });
});
