import { describe, expect, it } from 'vitest';
import { CommandLineError, defineCommand, envName } from './command-definition.js';
import { parseCommandLine } from './command-line.js';
import { checks } from './flag-checks.js';
import { helpText, synopsis } from './usage-text.js';

const DEF = defineCommand({
  name: 'broker',
  summary: 'Runs a broker.',
  configurable: true,
  flags: {
    'data-dir': { type: 'string', value: 'DIR', help: 'data dir', required: true },
    port: { type: 'string', value: 'PORT', help: 'port to listen on', default: '8883', check: checks.port },
    'trusted-proxy': { type: 'string', value: 'CIDR', help: 'proxies', multiple: true },
    'proxy-protocol': { type: 'boolean', help: 'read PROXY headers' },
    cluster: { type: 'string', value: 'URL', help: 'redis', secret: true, check: (v) => (v.startsWith('redis://') ? undefined : 'must be a redis:// URL') },
    format: { type: 'string', value: 'F', help: 'format', complete: ['nginx', 'envoy'], check: checks.oneOf(['nginx', 'envoy']) },
  },
});

function errorOf(f: () => unknown): CommandLineError {
  try {
    f();
  } catch (err) {
    if (err instanceof CommandLineError) return err;
    throw err;
  }
  throw new Error('no error');
}

describe('parseCommandLine', () => {
  it('reads strings, repeatable lists and booleans, with = or a space', () => {
    const v = parseCommandLine(DEF, ['--data-dir', '/d', '--port=0', '--trusted-proxy', '10.0.0.0/8', '--trusted-proxy=::1/128', '--proxy-protocol']);
    expect(v).toEqual({ 'data-dir': '/d', port: '0', 'trusted-proxy': ['10.0.0.0/8', '::1/128'], 'proxy-protocol': true });
  });

  it('takes a value that starts with a dash after =, and asks for = when it follows a space', () => {
    expect(parseCommandLine(DEF, ['--data-dir=--odd'])['data-dir']).toBe('--odd');
    expect(errorOf(() => parseCommandLine(DEF, ['--data-dir', '--odd'])).message).toContain("use '--data-dir=-XYZ'");
  });

  it.each([
    [['--max-con', '1'], 'unknown flag --max-con'],
    [['--prot', '1'], 'unknown flag --prot (did you mean --port?)'],
    [['--trusted-proxies', 'x'], 'unknown flag --trusted-proxies (did you mean --trusted-proxy?)'],
    [['-p', '1'], 'unknown flag -p'],
    [['--port', 'http'], '--port must be a port number from 0 to 65535, not "http"'],
    [['--format', 'apache'], '--format must be one of nginx, envoy, not "apache"'],
    [['stray'], 'Unexpected argument'],
  ])('refuses %j: %s', (argv, message) => {
    expect(errorOf(() => parseCommandLine(DEF, argv)).message).toContain(message);
  });

  it('never echoes the value of a secret flag', () => {
    const err = errorOf(() => parseCommandLine(DEF, ['--cluster', 'postgres://u:hunter2@h/db']));
    expect(err.message).toBe('--cluster must be a redis:// URL');
  });
});

describe('usage text', () => {
  it('lists every flag with its value, meaning, default and environment name', () => {
    const help = helpText(DEF);
    for (const [name, f] of Object.entries(DEF.flags)) {
      expect(help).toContain(`--${name}`);
      expect(help).toContain(f.help);
      expect(help).toContain(envName(name));
    }
    expect(help).toMatch(/--port PORT +port to listen on \(default: 8883; env TLSFLEET_PORT\)/);
    expect(help).toMatch(/--trusted-proxy CIDR .*repeatable/);
    expect(help).toMatch(/--format F .*one of nginx, envoy/);
  });

  it('writes a synopsis with required flags bare and repeatable ones marked', () => {
    expect(synopsis(DEF)).toBe('tlsfleet broker --data-dir DIR [--port PORT] [--trusted-proxy CIDR]... [--proxy-protocol] [--cluster URL] [--format F]');
  });
});
