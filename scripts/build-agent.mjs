import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

// The reference device agent as one ESM file with mqtt, asn1js and @tlsfleet/common
// inlined: `node tlsfleet-agent.mjs enroll|run ...` on a device that has Node and
// nothing else. Built from the TypeScript sources, so it needs no `tsc -b` first.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ENTRY = resolve(ROOT, 'device-sdk/src/agent-main.ts');
export const DEFAULT_AGENT_BUNDLE = resolve(ROOT, 'device-sdk/bundle/tlsfleet-agent.mjs');

/**
 * mqtt.js and some of its dependencies are CommonJS and call require('events'),
 * require('tls') and the like; an ESM bundle has no `require`, so esbuild's shim would
 * throw "Dynamic require is not supported". A real one made from the bundle's own URL
 * serves Node built-ins (and nothing else is left to require).
 */
const REQUIRE_BANNER = "import { createRequire as __tlsfleetCreateRequire } from 'node:module'; const require = __tlsfleetCreateRequire(import.meta.url);";

/** Builds the bundle into `outFile` (default device-sdk/bundle/tlsfleet-agent.mjs); resolves with its path and size in bytes. */
export async function buildAgent(outFile = DEFAULT_AGENT_BUNDLE) {
  const result = await build({
    entryPoints: [ENTRY],
    outfile: outFile,
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    // Our workspace packages resolve to their TypeScript sources (as vitest does).
    conditions: ['tlsfleet-source'],
    banner: { js: REQUIRE_BANNER },
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  });
  const inputs = Object.keys(result.metafile.inputs).length;
  return { outFile, bytes: statSync(outFile).size, inputs };
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outFile = process.argv[2] === undefined ? DEFAULT_AGENT_BUNDLE : resolve(process.argv[2]);
  const { bytes, inputs } = await buildAgent(outFile);
  console.log(`${outFile}: ${(bytes / 1024).toFixed(1)} KiB from ${inputs} modules`);
}
