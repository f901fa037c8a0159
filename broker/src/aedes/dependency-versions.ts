/**
 * Adaptation 1 (aedes/index.ts). What Aedes does: nothing checks which Aedes, mqtt-packet,
 * aedes-persistence, qlobber or mqemitter-redis is installed, and every other adaptation here relies on their
 * internals. Why we change it: a
 * fresh install of another release could break them silently; the broker refuses to start
 * instead. Upstream: Aedes 2 (moscajs/aedes#194, #1085) is the path to MQTT 5, still in beta.
 * Record: docs/internals/aedes-version-pin.md.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The exact releases the adaptations in this folder were written and tested against,
 * pinned in broker/package.json. Another release may move what they rely on (the order of
 * Aedes' delivery steps, its client's fields): the broker refuses to start on one.
 */
export const WRITTEN_FOR = { aedes: '1.2.0', 'mqtt-packet': '9.0.2', 'aedes-persistence': '11.0.0', qlobber: '8.0.1', 'mqemitter-redis': '7.2.1' } as const;

export type AdaptedDependency = keyof typeof WRITTEN_FOR;

/** The installed version of each adapted dependency, as its package.json says. */
export function installedVersions(): Record<AdaptedDependency, string> {
  // Aedes exports only ".": its package.json sits beside the entry point.
  const aedesDir = dirname(fileURLToPath(import.meta.resolve('aedes')));
  const json = (name: string) => versionIn(createRequire(import.meta.url).resolve(`${name}/package.json`));
  return { aedes: versionIn(join(aedesDir, 'package.json')), 'mqtt-packet': json('mqtt-packet'), 'aedes-persistence': json('aedes-persistence'), qlobber: json('qlobber'), 'mqemitter-redis': json('mqemitter-redis') };
}

/** Throws, naming each mismatch, unless every adapted dependency is the release WRITTEN_FOR names. */
export function assertDependencyVersions(installed: Record<AdaptedDependency, string> = installedVersions()): void {
  const wrong = (Object.keys(WRITTEN_FOR) as AdaptedDependency[]).filter((name) => installed[name] !== WRITTEN_FOR[name]);
  if (wrong.length === 0) return;
  const found = wrong.map((name) => `${name} ${installed[name]} (written for ${WRITTEN_FOR[name]})`).join(', ');
  throw new Error(`broker/src/aedes adapts exact releases; installed: ${found}. Install the pinned versions (npm ci), or review each adaptation against the new release and update WRITTEN_FOR`);
}

function versionIn(packageJson: string): string {
  const version = (JSON.parse(readFileSync(packageJson, 'utf8')) as { version?: unknown }).version;
  return typeof version === 'string' ? version : 'unknown';
}
