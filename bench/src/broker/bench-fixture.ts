import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credential, type Credential } from './mqtt-client.js';

// The benchmark's trust domain: a data dir made by the CLI's `init`, and many client
// identities enrolled through its Authority by ../provisioning/mint-devices.js, spawned so
// that the broker benchmark's own process never loads provisioning.

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = join(root, 'cli/bin/tlsfleet.js');
const mintDevices = join(root, 'bench/dist/provisioning/mint-devices.js');

export interface BenchFixture {
  readonly dataDir: string;
  /** device-0 … device-(n-1). */
  readonly devices: readonly Credential[];
  /** A service identity, which the default policy lets subscribe to devices/+/#. */
  readonly service: Credential;
  /** What the set-up took, for the report. */
  readonly note: string;
}

export function prepareFixture(workDir: string, deviceCount: number, serviceName: string): BenchFixture {
  const dataDir = join(workDir, 'data');
  run(process.execPath, [cli, 'init', '--data-dir', dataDir]);
  const file = join(workDir, 'identities.json');
  const minted = run(process.execPath, [mintDevices, dataDir, file, String(deviceCount), serviceName]).trim();
  const ca = readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8');
  const ids = JSON.parse(readFileSync(file, 'utf8')) as Record<'devices' | 'services', { name: string; certChain: string; key: string }[]>;
  const started = performance.now();
  const devices = ids.devices.map((d) => credential(d.name, d.certChain, d.key, ca));
  const service = ids.services.map((s) => credential(s.name, s.certChain, s.key, ca))[0];
  if (!service) throw new Error('no service identity minted');
  const note = `${minted}; ${devices.length + 1} client TLS contexts in ${Math.round(performance.now() - started)} ms`;
  return { dataDir, devices, service, note };
}

/** Runs a set-up command to completion, bounded to 2 minutes; returns its stdout. */
function run(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${[cmd, ...args].join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout;
}
