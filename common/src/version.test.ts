import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VERSION } from './version.js';

const ROOT = new URL('../../', import.meta.url);
const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(path, ROOT), 'utf8')) as Record<string, unknown>;
const root = readJson('package.json') as { version: string; workspaces: string[] };

describe('one version source', () => {
  it('VERSION is the root package.json version, and it is semver', () => {
    expect(VERSION).toBe(root.version);
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/);
  });

  it.each(root.workspaces)('%s/package.json has the same version, and depends on its siblings at that version', (ws) => {
    const pkg = readJson(`${ws}/package.json`) as { version: string } & Record<string, Record<string, string> | undefined>;
    expect(pkg.version).toBe(root.version);
    for (const field of ['dependencies', 'devDependencies', 'peerDependencies']) {
      for (const [name, range] of Object.entries(pkg[field] ?? {})) {
        if (name.startsWith('@tlsfleet/')) expect(`${name}@${range}`).toBe(`${name}@${root.version}`);
      }
    }
  });
});
