import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Device, DeviceError } from '@tlsfleet/device-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken, startFleetEnv, type FleetEnv } from './harness/broker-env.js';
import { runCli, startService } from './harness/cli.js';
import { makeCsr, newKey } from './harness/csr.js';
import { newDevice, nextEvent, startConnected } from './harness/device-env.js';
import { postJson, request } from './harness/https-client.js';

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

  it('an agent cut off by a power cut after its renewal was issued, before it stored it, gets the same certificate again after restart', async () => {
    const id = 'power-cut-1';
    const state = join(env.dir, 'agents', id);
    const token = await mintToken(env, id, 'device', 20);
    const enrolled = await runCli(['device', 'enroll', '--token', token, '--provisioning', env.url, '--state', state, '--bootstrap-ca', join(env.dataDir, 'ca-bundle.pem')]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const run = ['device', 'run', '--state', state, '--broker', env.brokerUrl, '--heartbeat', '1s'];
    // SIGKILL once the answer is in hand and its file half written: the service has recorded the renewal, the device has not.
    const killed = await runCli(run, { env: { TLSFLEET_FAULT_KILL_AT: 'candidate:temp-written' } });
    expect(killed.code).toBeNull();
    const certificates = async () =>
      (await request(`${env.url}/v1/devices/${id}`, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } })).json().certificates as { serial: string }[];
    const issued = await certificates();
    expect(issued).toHaveLength(2);
    const lost = issued[1]!.serial;
    // The restarted agent renews at once (renewAfter has passed) with the key it stored before asking.
    const agent = await startService(run, /"event":"renewed","deviceId":"[^"]+","serial":"([0-9a-f]+)"/);
    try {
      expect(agent.url).toBe(lost);
      expect(agent.output()).not.toMatch(/superseded/);
      expect(await certificates()).toHaveLength(2);
    } finally {
      await agent.stop();
    }
  });
});
