#!/usr/bin/env node
// prepack of every workspace package: npm packs only the package's own directory, so the
// repository's LICENSE is copied in beside its package.json (git ignores the copies).
import { copyFileSync } from 'node:fs';

copyFileSync(new URL('../LICENSE', import.meta.url), 'LICENSE');
