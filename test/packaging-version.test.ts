import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from './harness/cli.js';

const rootVersion = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

describe('tlsfleet --version', () => {
  it('prints "tlsfleet <root package.json version>" and exits 0', async () => {
    const r = await runCli(['--version']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`tlsfleet ${rootVersion}\n`);
  });

  it('is listed in tlsfleet --help', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('tlsfleet --version');
  });
});
