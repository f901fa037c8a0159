import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { createDevice, type Device } from '@tlsfleet/device-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleetEnv, type FleetEnv } from './harness/broker-env.js';
import { startProvisioningProcess, startService, type Service } from './harness/cli.js';
import { newDevice, nextEvent, startConnected } from './harness/device-env.js';
import { request } from './harness/https-client.js';

// Issue 23, sleepy devices: the SDK and the reference agent come back by themselves after
// sleeping past their certificate's expiry when provisioning runs with --renew-expired-within.
describe('a device that slept past its certificate expiry', () => {
  let env: FleetEnv;
  let off: Service; // the same data dir, without --renew-expired-within
  const devices: Device[] = [];
  const services: Service[] = [];

  beforeAll(async () => {
    env = await startFleetEnv({ provisioningArgs: ['--renew-expired-within', '1h'] });
    off = await startProvisioningProcess(env.dataDir);
  });
  afterAll(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await Promise.all(services.map((s) => s.stop()));
    await off?.stop();
    await env?.stop();
  });

  const stateOf = (id: string) => join(env.dir, 'devices', id);

  /** Enrolls and connects a device with a 4 s certificate, then puts it to sleep: closed, until its notAfter has passed. */
  async function sleepPastExpiry(id: string, provisioningUrl = env.url): Promise<{ serial: string; notAfter: string }> {
    // random 0: renewal exactly at renewAfter (60-75 % of the lifetime), well after this closes it.
    const d = await newDevice(env, id, { certTtlSeconds: 4, provisioningUrl, random: () => 0 });
    await startConnected(d);
    const before = d.identity!;
    await d.close();
    expect(Date.now()).toBeLessThan(Date.parse(before.renewAfter));
    // The one event to wait for is the certificate's own notAfter.
    await delay(Math.max(0, Date.parse(before.notAfter) + 50 - Date.now()));
    return before;
  }

  it('renews after expiry by itself when it wakes, and connects with the new certificate', async () => {
    const before = await sleepPastExpiry('sleeper-1');
    const d = createDevice({ stateDir: stateOf('sleeper-1'), brokerUrl: env.brokerUrl, reconnect: { initialDelayMs: 200, maxDelayMs: 2000 } });
    devices.push(d);
    const renewed = nextEvent(d, 'renewed');
    const connected = nextEvent(d, 'connected');
    await d.start();
    const [identity, info] = await renewed;
    expect(info).toEqual({ afterExpiry: true });
    expect(identity.serial).not.toBe(before.serial);
    expect(Date.parse(identity.notAfter)).toBeGreaterThan(Date.now());
    expect((await connected)[0].serial).toBe(identity.serial);
    expect(d.identity!.serial).toBe(identity.serial);
    await d.publish('telemetry', 'awake');
    const device = await request(`${env.url}/v1/devices/sleeper-1`, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
    expect(device.json().currentSerial).toBe(identity.serial);
  });

  it('goes to reenrollment-required (expired) when the service does not renew after expiry', async () => {
    await sleepPastExpiry('sleeper-2', off.url);
    const d = createDevice({ stateDir: stateOf('sleeper-2'), brokerUrl: env.brokerUrl });
    devices.push(d);
    const told = nextEvent(d, 'reenrollment-required');
    let renewed = false;
    d.on('renewed', () => (renewed = true));
    await expect(d.start()).rejects.toMatchObject({ code: 'expired' });
    const [err] = await told;
    expect(err.code).toBe('expired');
    expect(err.message).toMatch(/renewal after expiry: No such route/);
    expect(renewed).toBe(false);
  });

  // It stops the env's provisioning service and starts it again on the same port, with the same flag.
  it('a running device whose certificate ran out while provisioning was down keeps asking, renews after expiry once it is back, and moves its session', async () => {
    const port = env.service.port;
    const d = await newDevice(env, 'sleeper-4', { certTtlSeconds: 4, random: () => 0, renewalRetry: { initialDelayMs: 300, maxDelayMs: 600 } });
    devices.push(d);
    await startConnected(d);
    const before = d.identity!;
    await env.service.stop();
    // Asked after expiry with the service still down: no answer is not a refusal.
    const [late] = await nextEvent(d, 'error', () => Date.now() >= Date.parse(before.notAfter));
    expect(late.code).toBe('connection_refused');
    await nextEvent(d, 'error', () => Date.now() >= Date.parse(before.notAfter)); // and again, paced
    expect(d.state).toBe('running');
    const renewed = nextEvent(d, 'renewed');
    services.push(await startProvisioningProcess(env.dataDir, ['--port', String(port), '--renew-expired-within', '1h']));
    const [identity, info] = await renewed;
    expect(info).toEqual({ afterExpiry: true });
    if (d.identity!.serial !== identity.serial) await nextEvent(d, 'connected', ({ serial }) => serial === identity.serial);
    expect(d.state).toBe('running');
    await d.publish('telemetry', 'still here');
  });

  it('wakes after expiry while provisioning is down, starts anyway, and renews after expiry once it is back', async () => {
    const away = await startProvisioningProcess(env.dataDir, ['--renew-expired-within', '1h']);
    const before = await sleepPastExpiry('sleeper-5', away.url);
    const port = away.port;
    await away.stop();
    const d = createDevice({ stateDir: stateOf('sleeper-5'), brokerUrl: env.brokerUrl, renewalRetry: { initialDelayMs: 300, maxDelayMs: 600 } });
    devices.push(d);
    const failed = nextEvent(d, 'error');
    await d.start(); // resolves: an unreachable service is not a refusal
    expect((await failed)[0].code).toBe('connection_refused');
    expect(d.state).toBe('running');
    const renewed = nextEvent(d, 'renewed');
    const connected = nextEvent(d, 'connected');
    services.push(await startProvisioningProcess(env.dataDir, ['--port', String(port), '--renew-expired-within', '1h']));
    const [identity, info] = await renewed;
    expect(info).toEqual({ afterExpiry: true });
    expect(identity.serial).not.toBe(before.serial);
    expect((await connected)[0].serial).toBe(identity.serial);
  });

  it('the reference agent logs the renewal after expiry as a renewed line with afterExpiry', async () => {
    const before = await sleepPastExpiry('sleeper-3');
    const agent = await startService(['device', 'run', '--state', stateOf('sleeper-3'), '--broker', env.brokerUrl, '--heartbeat', '1h'], /"event":"connected"/);
    services.push(agent);
    const lines = agent.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const line = lines.find((l) => l.event === 'renewed');
    expect(line).toMatchObject({ event: 'renewed', deviceId: 'sleeper-3', afterExpiry: true });
    expect(line!.serial).not.toBe(before.serial);
  });
});
