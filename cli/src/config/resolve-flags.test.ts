import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommandLineError } from '@tlsfleet/common';
import { BROKER } from '../definitions/broker.js';
import { INIT } from '../definitions/offline-commands.js';
import { resolveFlags } from './resolve-flags.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tlsfleet-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof CommandLineError) return err.message;
    throw err;
  }
  throw new Error('no error');
}

describe('resolveFlags', () => {
  it('takes a flag over the environment, the environment over the file, the file over nothing', () => {
    const config = file('config.yaml', 'port: 1001\nhealth-port: 1002\nws-port: 1003\ndata-dir: /from-file\n');
    const env = { TLSFLEET_PORT: '2001', TLSFLEET_HEALTH_PORT: '2002' };
    const f = resolveFlags(BROKER, ['--config', config, '--port', '3001'], env);
    expect(f).toMatchObject({ port: '3001', 'health-port': '2002', 'ws-port': '1003', 'data-dir': '/from-file' });
    expect(f['max-connections']).toBeUndefined();
  });

  it('finds the file through TLSFLEET_CONFIG, and reads JSON too', () => {
    const config = file('config.json', '{\n  "port": 4001,\n  "proxy-protocol": true,\n  "trusted-proxy": ["10.0.0.0/8", "127.0.0.1/32"]\n}\n');
    const f = resolveFlags(BROKER, [], { TLSFLEET_CONFIG: config });
    expect(f).toMatchObject({ port: '4001', 'proxy-protocol': true, 'trusted-proxy': ['10.0.0.0/8', '127.0.0.1/32'], config });
  });

  it('reads a repeatable flag as a YAML list, or comma-separated from the environment, and booleans from both', () => {
    const config = file('c.yaml', 'trusted-proxy:\n  - 10.0.0.0/8\n  - 192.168.0.0/16\ntls-session-tickets: true\n');
    expect(resolveFlags(BROKER, ['--config', config], {})).toMatchObject({ 'trusted-proxy': ['10.0.0.0/8', '192.168.0.0/16'], 'tls-session-tickets': true });
    expect(resolveFlags(BROKER, ['--config', config], { TLSFLEET_TRUSTED_PROXY: '1.2.3.0/24, 5.6.7.0/24', TLSFLEET_TLS_SESSION_TICKETS: 'false' })).toMatchObject({
      'trusted-proxy': ['1.2.3.0/24', '5.6.7.0/24'],
      'tls-session-tickets': false,
    });
  });

  it.each([
    ['an unknown key, with the nearest known one', 'port: 1\n\nmax-conections: 5\n', /c\.yaml:3: unknown key "max-conections" \(did you mean "max-connections"\?\)/],
    ['a bad value', 'data-dir: /d\nport: http\n', /c\.yaml:2: port must be a port number from 0 to 65535, not "http"/],
    ['a list for a single flag', 'port:\n  - 1\n  - 2\n', /c\.yaml:1: port takes one value, not a list/],
    ['a string for a boolean', 'proxy-protocol: maybe\n', /c\.yaml:1: proxy-protocol takes true or false/],
    ['a YAML syntax error', 'port: 1\n  bad: [\n', /c\.yaml:\d+: /],
    ['a list at the top', '- port\n', /c\.yaml:1: must be a mapping of flag names to values/],
    ['the config key itself', 'config: other.yaml\n', /c\.yaml:1: unknown key "config"/],
  ])('refuses %s, naming the file and line', (_what, text, message) => {
    expect(errorOf(() => resolveFlags(BROKER, ['--config', file('c.yaml', text)], {}))).toMatch(message);
  });

  it('refuses a missing config file, naming it', () => {
    expect(errorOf(() => resolveFlags(BROKER, ['--config', join(dir, 'absent.yaml')], {}))).toMatch(/--config .*absent\.yaml: no such file/);
  });

  it.each([
    [{ TLSFLEET_PORT: 'http' }, 'TLSFLEET_PORT: must be a port number from 0 to 65535, not "http"'],
    [{ TLSFLEET_MAX_CONNECTIONS: '0' }, 'TLSFLEET_MAX_CONNECTIONS: must be a whole number ≥ 1, not "0"'],
    [{ TLSFLEET_PROXY_PROTOCOL: 'maybe' }, 'TLSFLEET_PROXY_PROTOCOL: takes true or false, not "maybe"'],
    [{ TLSFLEET_WS_FORWARDED_CERT: 'apache' }, 'TLSFLEET_WS_FORWARDED_CERT: must be one of nginx, envoy, not "apache"'],
  ])('refuses a bad environment value %j, naming the variable', (env, message) => {
    expect(errorOf(() => resolveFlags(BROKER, [], env))).toBe(message);
  });

  it('ignores TLSFLEET_ variables that name no flag, and empty ones', () => {
    expect(resolveFlags(BROKER, [], { TLSFLEET_FAULT_KILL_AT: 'x', TLSFLEET_PORT: '' })).toEqual({});
  });

  it('reads neither environment nor file for a command that is not configurable', () => {
    expect(resolveFlags(INIT, [], { TLSFLEET_DATA_DIR: '/d', TLSFLEET_CONFIG: join(dir, 'absent.yaml') })).toEqual({});
  });
});
