import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const sdkDir = dirname(dirname(fileURLToPath(import.meta.url)));
const pkg = JSON.parse(readFileSync(join(sdkDir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };

/** Every package reachable from the SDK's dependencies, as installed. */
function closure(): Map<string, string> {
  const seen = new Map<string, string>();
  const visit = (name: string, from: string) => {
    if (seen.has(name)) return;
    const require = createRequire(join(from, 'package.json'));
    let dir: string;
    try {
      dir = dirname(require.resolve(`${name}/package.json`));
    } catch {
      // Packages whose exports hide package.json: walk up from the entry point.
      dir = dirname(require.resolve(name));
      while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
    }
    seen.set(name, dir);
    const deps = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {};
    for (const dep of Object.keys(deps)) visit(dep, dir);
  };
  for (const dep of Object.keys(pkg.dependencies)) visit(dep, sdkDir);
  return seen;
}

describe('what the device SDK may depend on', () => {
  it('names only common, mqtt and asn1js', () => {
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['@tlsfleet/common', 'asn1js', 'mqtt']);
  });

  it('pulls in no server package and no native addon anywhere in its dependency tree', () => {
    const all = closure();
    for (const server of ['express', 'aedes', 'better-sqlite3', 'pg', 'pino', 'prom-client', '@tlsfleet/provisioning', '@tlsfleet/broker', '@peculiar/x509', 'pkijs']) {
      expect(all.has(server), server).toBe(false);
    }
    for (const [name, dir] of all) {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { gypfile?: boolean; scripts?: Record<string, string> };
      expect(manifest.gypfile === true || existsSync(join(dir, 'binding.gyp')) || manifest.scripts?.install !== undefined, `${name} builds native code`).toBe(false);
    }
  });

  it('imports nothing from the server side in its own sources', () => {
    const srcDir = join(sdkDir, 'src');
    for (const file of readdirSync(srcDir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.fixture.ts'))) {
      const imports = [...readFileSync(join(srcDir, file), 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
      for (const spec of imports) expect(spec, `${file} imports ${spec}`).toMatch(/^(node:|\.\/|@tlsfleet\/common$|mqtt$|asn1js$)/);
    }
  });
});
