import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Device, DeviceError } from '@tlsfleet/device-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleetEnv, type FleetEnv } from './harness/broker-env.js';
import { makeCsr, newKey } from './harness/csr.js';
import { newDevice, nextEvent, startConnected } from './harness/device-env.js';
import { postJson } from './harness/https-client.js';

describe('the SDK and renewal lineage', () => {
  let env: FleetEnv;
  const devices: Device[] = [];
  beforeAll(async () => {
    env = await startFleetEnv();
  });
  afterAll(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await env?.stop();
  });

  it('a device whose certificate a copy of its key renewed first gets one typed, final superseded, stays connected, and asks for re-enrollment at expiry', async () => {
    const d = await newDevice(env, 'cloned-1', { certTtlSeconds: 12 });
    devices.push(d);
    const errors: DeviceError[] = [];
    d.on('error', (e) => errors.push(e));
    await startConnected(d);
    const stored = JSON.parse(readFileSync(join(env.dir, 'devices', 'cloned-1', 'identity.json'), 'utf8')) as { chainPem: string; privateKeyPem: string };
    // Whoever holds a copy of the key renews before the device does (it renews at ~2/3 of 12 s).
    const stolen = await postJson(`${env.url}/v1/renew`, { csr: await makeCsr(newKey()) }, { ca: env.ca, cert: stored.chainPem, key: stored.privateKeyPem });
    expect(stolen.status).toBe(201);
    const [err] = await nextEvent(d, 'error', (e) => e.code === 'superseded');
    expect(err).toMatchObject({ code: 'superseded', retryable: false, status: 403 });
    expect(d.state).toBe('running');
    expect(d.connected).toBe(true);
    const [final] = await nextEvent(d, 'reenrollment-required');
    expect(final.code).toBe('expired');
    // One refusal, no retry loop against a renewal that can never succeed.
    expect(errors.filter((e) => e.code === 'superseded')).toHaveLength(1);
  });
});
