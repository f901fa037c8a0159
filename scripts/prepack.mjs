#!/usr/bin/env node
// prepack of every workspace package (run in the package's directory by npm pack/publish):
// 1. npm packs only the package's own directory, so the repository's LICENSE is copied in
//    beside its package.json (git ignores the copies);
// 2. `tsc -b` never deletes the output of a source file that was removed or renamed, so a
//    tarball packed from a working tree would ship stale dist/ files that import what no
//    longer exists: every dist/ file whose src/ .ts is gone is removed first.
import { copyFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';

copyFileSync(new URL('../LICENSE', import.meta.url), 'LICENSE');

const OUTPUT = /\.(?:js|d\.ts)(?:\.map)?$/;
if (existsSync('dist')) {
  for (const entry of readdirSync('dist', { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !OUTPUT.test(entry.name)) continue;
    const out = join(entry.parentPath, entry.name);
    const source = join('src', relative('dist', out)).replace(OUTPUT, '.ts');
    if (!existsSync(source)) rmSync(out);
  }
}
