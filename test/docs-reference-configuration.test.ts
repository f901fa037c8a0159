import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { envName, type CommandDefinition } from '@tlsfleet/common';
import { resolveFlags } from '../cli/src/config/resolve-flags.js';
import { leafCommands } from '../cli/src/definitions/command-definitions.js';
import { BROKER } from '../cli/src/definitions/broker.js';
import { DEV } from '../cli/src/definitions/dev.js';
import { PROVISIONING } from '../cli/src/definitions/provisioning.js';
import { recipe } from './harness/readme.js';
import { tempDir } from './harness/temp-dir.js';

// docs/reference/configuration.md: its example files and environment are read by the code the
// commands use (resolveFlags), its variable table matches the definitions, and the error
// messages it quotes are the ones the loader gives.
const doc = readFileSync(new URL('../docs/reference/configuration.md', import.meta.url), 'utf8');
const tmp = tempDir('tlsfleet-docs-config-');
afterAll(() => tmp.cleanup());

function file(name: string, text: string): string {
  const path = join(tmp.path, name);
  writeFileSync(path, text);
  return path;
}

/** The values a command would run with, given only this config file. */
function load(def: CommandDefinition, name: string, text: string): Record<string, unknown> {
  return resolveFlags(def, ['--config', file(name, text)], {}) as Record<string, unknown>;
}

describe('docs/reference/configuration.md example files', () => {
  it.each([
    ['broker.yaml', BROKER, recipe('config-broker-yaml')],
    ['provisioning.yaml', PROVISIONING, recipe('config-provisioning-yaml')],
    ['provisioning.json', PROVISIONING, recipe('config-provisioning-json')],
    ['dev.yaml', DEV, recipe('config-dev-yaml')],
  ] as const)('the example %s is accepted by the config loader, and refused once a key is misspelled', (fileName, def, text) => {
    const values = load(def, fileName, text);
    // Every key of the example reached a flag (nothing silently dropped).
    const keys = [...text.matchAll(/^"?([a-z][a-z0-9-]*)"?:/gm), ...text.matchAll(/^\s+"([a-z][a-z0-9-]*)":/gm)].map((m) => m[1]!);
    expect(keys.length).toBeGreaterThan(4);
    for (const key of keys) expect(values[key], key).toBeDefined();
    const misspelled = text.replace(/(^|")data-dir/m, '$1data-dri');
    expect(misspelled).not.toBe(text);
    expect(() => load(def, `typo-${fileName}`, misspelled)).toThrow(/unknown key "data-dri" \(did you mean "data-dir"\?\)/);
  });

  it('reads the broker example as the doc says: numbers as text, a YAML list, booleans', () => {
    const values = load(BROKER, 'broker.yaml', recipe('config-broker-yaml'));
    expect(values).toMatchObject({ port: '8883', 'trusted-proxy': ['10.0.0.0/8', '192.168.0.0/16'], 'proxy-protocol': true, 'tls-session-tickets': false });
  });

  it('reads the environment file example, and refuses a bad value in it', () => {
    const env = Object.fromEntries(
      recipe('config-broker-env')
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.startsWith('#'))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(Object.keys(env).length).toBeGreaterThan(3);
    expect(resolveFlags(BROKER, [], env)).toMatchObject({ 'data-dir': '/var/lib/tlsfleet', 'proxy-protocol': true, 'trusted-proxy': ['10.0.0.0/8', '192.168.0.0/16'] });
    expect(() => resolveFlags(BROKER, [], { ...env, TLSFLEET_HEALTH_PORT: 'http' })).toThrow('TLSFLEET_HEALTH_PORT: must be a port number from 0 to 65535, not "http"');
  });
});

describe('docs/reference/configuration.md tables', () => {
  it('lists every environment variable of every configurable command, and no other', () => {
    const section = doc.slice(doc.indexOf('| variable | flag | commands |'));
    const rows = section.split('\n').slice(2);
    const listed = new Set<string>();
    for (const row of rows) {
      if (!row.startsWith('|')) break;
      const [variable, flag, commands] = row.slice(1, -1).split('|').map((c) => c.trim().replace(/^`(.*)`$/, '$1')) as [string, string, string];
      expect(variable, row).toBe(envName(flag.replace(/^--/, '')));
      for (const command of commands.split(', ')) listed.add(`${command} ${variable}`);
    }
    const defined = leafCommands()
      .filter((c) => c.configurable)
      .flatMap((c) => Object.keys(c.flags).map((f) => `${c.name} ${envName(f)}`));
    expect([...listed].sort()).toEqual(defined.sort());
  });

  it('names every *-file secret flag in its secrets section', () => {
    const secrets = doc.slice(doc.indexOf('## Secrets'), doc.indexOf('## Example files'));
    const fileFlags = new Set(leafCommands().flatMap((c) => Object.keys(c.flags).filter((f) => f.endsWith('-file'))));
    expect(fileFlags.size).toBeGreaterThanOrEqual(4);
    for (const f of fileFlags) expect(secrets, `--${f}`).toContain(`--${f} FILE`);
  });

  it('quotes the loader\'s own messages for a misspelled key, a bad value, a list and a bad boolean', () => {
    /** A file whose line n is `last`, after n - 1 comment lines. */
    const lines = (n: number, last: string) => `${Array.from({ length: n - 1 }, (_, i) => `# line ${i + 1}\n`).join('')}${last}\n`;
    const cases: [string, string][] = [
      [lines(7, 'max-conections: 5'), 'broker.yaml:7: unknown key "max-conections" (did you mean "max-connections"?)'],
      [lines(2, 'port: http'), 'broker.yaml:2: port must be a port number from 0 to 65535, not "http"'],
      [lines(3, 'port: [1, 2]'), 'broker.yaml:3: port takes one value, not a list'],
      [lines(5, 'proxy-protocol: maybe'), 'broker.yaml:5: proxy-protocol takes true or false'],
    ];
    for (const [text, message] of cases) {
      expect(doc, 'the doc quotes it').toContain(`\`${message}\``);
      const dir = tempDir('tlsfleet-docs-config-msg-');
      try {
        const path = join(dir.path, 'broker.yaml');
        writeFileSync(path, text);
        expect(() => resolveFlags(BROKER, ['--config', path], {})).toThrow(`${path}:${message.slice('broker.yaml:'.length)}`);
      } finally {
        dir.cleanup();
      }
    }
  });
});
