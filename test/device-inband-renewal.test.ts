import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createDevice, FileCredentialStore, type Device, type DeviceOptions, type PendingRenewal } from '@tlsfleet/device-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { mintToken } from './harness/broker-env.js';
import { metric } from './harness/broker-probe.js';
import type { Service } from './harness/cli.js';
import { nextEvent, startConnected } from './harness/device-env.js';
import type { ProvisioningEnv } from './harness/fleet-env.js';
import { startHaproxy } from './harness/haproxy.js';
import { healthUrlOf, startRenewalEnv, type RenewalEnv } from './harness/renewal-env.js';

// The SDK's renewal over its MQTT session, against real processes: a broker relaying to
// provisioning (in-band), a broker with no renewer (`not_found`: HTTPS at once), and a broker
// whose relay never answers (HTTPS after inBandTimeoutMs).

let r: RenewalEnv | undefined;
const devices: Device[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.all(devices.splice(0).map((d) => d.close()));
  for (const c of cleanups.splice(0).reverse()) await c();
  await r?.stop();
  r = undefined;
});

async function device(prov: ProvisioningEnv, broker: Pick<Service, 'url'>, id: string, opts: { certTtlSeconds: number } & Partial<DeviceOptions>): Promise<Device> {
  const { certTtlSeconds, ...rest } = opts;
  const d = createDevice({
    stateDir: join(prov.dir, 'devices', id),
    provisioningUrl: prov.url,
    brokerUrl: broker.url,
    bootstrapCa: prov.ca,
    token: await mintToken(prov, id, 'device', certTtlSeconds),
    reconnect: { initialDelayMs: 200, maxDelayMs: 2000 },
    renewalRetry: { initialDelayMs: 200, maxDelayMs: 2000 },
    ...rest,
  });
  devices.push(d);
  return d;
}

const inBand = (healthUrl: string, result: string) => metric(healthUrl, 'tlsfleet_broker_inband_renewals_total', { result });

/** Two renewals, each followed by the swap to its certificate; the serials renewed. */
async function twoRenewals(d: Device): Promise<string[]> {
  const renewed: string[] = [];
  const disconnected: string[] = [];
  d.on('renewed', ({ serial }) => renewed.push(serial));
  d.on('disconnected', ({ reason }) => disconnected.push(reason));
  await startConnected(d);
  const first = d.identity!.serial;
  await nextEvent(d, 'connected', ({ swap }) => swap === true && renewed.length >= 2);
  expect(disconnected).toEqual([]);
  expect(new Set([first, ...renewed]).size).toBe(3);
  expect(d.identity!.serial).toBe(renewed[1]);
  return renewed;
}

describe('device SDK in-band renewal', () => {
  it('renews over its MQTT session through a relaying broker, never over HTTPS, and moves its session to each certificate', async () => {
    r = await startRenewalEnv();
    const broker = await r.startBroker(r.relayArgs);
    const healthUrl = healthUrlOf(broker);
    // A generous timeout: only an answer on the session can renew a 20 s certificate in time.
    const d = await device(r.prov, broker, 'ib-sdk-1', { certTtlSeconds: 20, inBandTimeoutMs: 60_000 });
    const renewed = await twoRenewals(d);
    expect(await inBand(healthUrl, 'issued')).toBe(renewed.length);
    expect(await inBand(healthUrl, 'not_found')).toBe(0);
  }, 150_000);

  it('renews in-band behind Debian HAProxy sending PROXY v2 (the cloud ingress shape), where the device reaches only the MQTT port', async () => {
    r = await startRenewalEnv();
    const broker = await r.startBroker([...r.relayArgs, '--proxy-protocol', '--trusted-proxy', '127.0.0.1/32']);
    const haproxy = await startHaproxy({ dir: r.prov.dir, backendPort: broker.port, proxy: 'v2' });
    cleanups.push(() => haproxy.stop());
    const d = await device(r.prov, { url: `mqtts://localhost:${haproxy.port}` }, 'ib-sdk-lb', { certTtlSeconds: 20, inBandTimeoutMs: 60_000 });
    const renewed = await twoRenewals(d);
    expect(await inBand(healthUrlOf(broker), 'issued')).toBe(renewed.length);
  }, 150_000);

  it('with no renewer the broker answers not_found and the SDK renews over HTTPS at once, asking in-band again on the next session', async () => {
    r = await startRenewalEnv();
    const broker = await r.startBroker([]);
    const healthUrl = healthUrlOf(broker);
    // Were the SDK to wait out its in-band timeout, the 20 s certificate would expire first.
    const d = await device(r.prov, broker, 'ib-sdk-2', { certTtlSeconds: 20, inBandTimeoutMs: 60_000 });
    const renewed = await twoRenewals(d);
    expect(await inBand(healthUrl, 'not_found')).toBe(renewed.length);
    expect(await inBand(healthUrl, 'issued')).toBe(0);
  }, 150_000);

  it('when the broker does not answer within inBandTimeoutMs, the SDK renews over HTTPS with the same key', async () => {
    r = await startRenewalEnv();
    // A relay target that accepts TCP and never says a word: the broker's renewer hangs.
    const held: Socket[] = [];
    const silent: Server = createServer((s) => void held.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    const port = (silent.address() as { port: number }).port;
    const broker = await r.startBroker(['--relay-provisioning', `https://127.0.0.1:${port}`, '--relay-identity', r.relayState]);
    const healthUrl = healthUrlOf(broker);
    // Every renewal key the SDK makes: one for the request in-band, reused by the HTTPS fallback.
    const keys: string[] = [];
    const store = new (class extends FileCredentialStore {
      override async savePendingRenewal(pending: PendingRenewal): Promise<void> {
        keys.push(pending.privateKeyPem);
        await super.savePendingRenewal(pending);
      }
    })(join(r.prov.dir, 'devices', 'ib-sdk-3'));
    const d = await device(r.prov, broker, 'ib-sdk-3', { certTtlSeconds: 20, inBandTimeoutMs: 1000, store });
    const renewedAt: number[] = [];
    const renewed = new Promise<void>((resolve) => d.on('renewed', () => renewedAt.push(Date.now()) && resolve()));
    await startConnected(d);
    const first = d.identity!.serial;
    const swapped = nextEvent(d, 'connected', ({ swap }) => swap === true);
    await renewed;
    const [{ serial }] = await swapped;
    expect(serial).not.toBe(first);
    expect(d.identity!.serial).toBe(serial);
    expect(keys).toHaveLength(1);
    expect((await store.load()).current!.privateKeyPem).toBe(keys[0]);
    // The request did reach the broker's relay (which still waits), and nothing was issued in-band.
    expect(held.length).toBeGreaterThanOrEqual(1);
    expect(await inBand(healthUrl, 'issued')).toBe(0);
  }, 150_000);
});
