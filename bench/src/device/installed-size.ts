import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './bench-fleet.js';
import { runToCompletion } from './tracked-processes.js';

/** What `npm install` leaves in a fresh project's node_modules. */
export interface InstalledSize {
  /** `du -sk`: disk blocks in use, bytes. */
  diskBytes: number;
  /** `du -sk --apparent-size`: the files' lengths, bytes. */
  apparentBytes: number;
  /** Packages npm installed (entries of node_modules/.package-lock.json). */
  packages: number;
}

const NPM_MS = 180_000;

/**
 * Packs common and device-sdk as npm would publish them (their `files`: dist only) and
 * installs both tarballs into a fresh project under `workDir`, from the registry like a
 * user would, install scripts off.
 */
export function installedSdkSize(workDir: string): InstalledSize {
  const packs = join(workDir, 'packs');
  mkdirSync(packs, { recursive: true });
  const packed = JSON.parse(
    runToCompletion('npm', ['pack', '--json', '--ignore-scripts', '--workspace', 'common', '--workspace', 'device-sdk', '--pack-destination', packs], { cwd: REPO_ROOT, timeoutMs: NPM_MS }),
  ) as { filename: string }[];
  return installInFreshProject(join(workDir, 'sdk-project'), packed.map((p) => join(packs, p.filename)));
}

/** The reference: mqtt alone, at the version range device-sdk asks for. */
export function installedMqttSize(workDir: string): InstalledSize {
  const sdk = JSON.parse(readFileSync(join(REPO_ROOT, 'device-sdk/package.json'), 'utf8')) as { dependencies: Record<string, string> };
  return installInFreshProject(join(workDir, 'mqtt-project'), [`mqtt@${sdk.dependencies.mqtt}`]);
}

function installInFreshProject(dir: string, specs: string[]): InstalledSize {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'size-probe', private: true, type: 'module' }));
  runToCompletion('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', ...specs], { cwd: dir, timeoutMs: NPM_MS });
  const modules = join(dir, 'node_modules');
  const lock = JSON.parse(readFileSync(join(modules, '.package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
  return { diskBytes: duKiB(modules, false) * 1024, apparentBytes: duKiB(modules, true) * 1024, packages: Object.keys(lock.packages).length };
}

function duKiB(path: string, apparent: boolean): number {
  const out = runToCompletion('du', ['-sk', ...(apparent ? ['--apparent-size'] : []), path], { timeoutMs: 60_000 });
  return Number(out.split('\t')[0]);
}
