#!/usr/bin/env node
// The root package.json's `version` is tlsfleet's one version source. This copies it to
// every workspace package.json (its own `version` and its dependencies on sibling
// @tlsfleet packages) and to common/src/version.ts. Run by `npm version <new>` at the root
// (the `version` lifecycle script, which then updates package-lock.json to match) or by
// hand; common/src/version.test.ts fails if they drift.
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const root = readJson(resolve(ROOT, 'package.json'));
const version = root.version;
if (!/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/.test(version)) throw new Error(`root package.json version "${version}" is not semver`);

for (const ws of root.workspaces) {
  const file = resolve(ROOT, ws, 'package.json');
  const pkg = readJson(file);
  pkg.version = version;
  for (const field of ['dependencies', 'devDependencies', 'peerDependencies']) {
    for (const name of Object.keys(pkg[field] ?? {})) if (name.startsWith('@tlsfleet/')) pkg[field][name] = version;
  }
  writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
}

const versionTs = resolve(ROOT, 'common/src/version.ts');
const source = readFileSync(versionTs, 'utf8').replace(/export const VERSION = '[^']*';/, `export const VERSION = '${version}';`);
writeFileSync(versionTs, source);
console.log(`sync-version: every package at ${version}`);
