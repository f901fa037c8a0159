import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { enrollWithStore, FileCredentialStore } from '@tlsfleet/device-sdk';
import type { AdminClient } from './admin-client.js';
import type { FleetConfig } from './fleet-config.js';
import type { ShardDevice } from './fleet-shard.js';

/** Runs `job` over `items` with at most `limit` in flight. */
export async function inParallel<T>(items: T[], limit: number, job: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await job(items[next++]!);
  }));
}

/** Enrollments the main thread runs at once before a mass-expiry ramp. */
const PRE_ENROLL_AT_ONCE = 32;

export interface PreparedIdentities {
  /** Minting the tokens (and, for mass-expiry, enrolling) before the ramp, seconds. */
  tokenMintSeconds: number;
  /** Devices enrolled before the ramp (mass-expiry), and how long each enrollment took, ms. */
  preEnrolled: number;
  enrollMs: number[];
}

/**
 * Gives every device without a kept identity a token. For mass-expiry the devices are also
 * enrolled here, as fast as the machine allows, so their certificates are issued within
 * seconds of each other (their renewal points then fall within about a minute); the ramp
 * only connects them.
 */
export async function prepareIdentities(devices: ShardDevice[], config: FleetConfig, target: { admin: AdminClient; provisioningUrl: string; ca: string }): Promise<PreparedIdentities> {
  const from = Date.now();
  const enrollMs: number[] = [];
  const herd = config.scenario === 'mass-expiry';
  await inParallel(devices, herd ? PRE_ENROLL_AT_ONCE : 16, async (d) => {
    if (existsSync(join(d.stateDir, 'identity.json'))) return;
    const token = await target.admin.mintToken(d.id, 'device', config.certTtlSeconds);
    if (!herd) {
      d.token = token;
      return;
    }
    const start = Date.now();
    await enrollWithStore(new FileCredentialStore(d.stateDir), { token, provisioningUrl: target.provisioningUrl, bootstrapCa: target.ca });
    enrollMs.push(Date.now() - start);
  });
  return { tokenMintSeconds: (Date.now() - from) / 1000, preEnrolled: enrollMs.length, enrollMs };
}
