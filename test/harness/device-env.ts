import { join } from 'node:path';
import { createDevice, type Device, type DeviceEvents, type DeviceOptions } from '@tlsfleet/device-sdk';
import type { MqttClient } from 'mqtt';
import { mintToken, startBrokerProcess, type FleetEnv } from './broker-env.js';
import type { Service } from './cli.js';
import { postJson } from './https-client.js';

/** A device on the SDK, enrolled through `env`'s provisioning service on first start. */
export async function newDevice(env: FleetEnv, id: string, opts: { certTtlSeconds?: number } & Partial<DeviceOptions> = {}): Promise<Device> {
  const { certTtlSeconds = 3600, ...rest } = opts;
  const token = await mintToken(env, id, 'device', certTtlSeconds);
  return createDevice({
    stateDir: join(env.dir, 'devices', id),
    provisioningUrl: env.url,
    brokerUrl: env.brokerUrl,
    bootstrapCa: env.ca,
    token,
    // Test-sized backoff: the shape (exponential, full jitter) is what is under test, not minutes.
    reconnect: { initialDelayMs: 200, maxDelayMs: 2000 },
    renewalRetry: { initialDelayMs: 200, maxDelayMs: 2000 },
    ...rest,
  });
}

/** The next `name` event of a device that `match` accepts. */
export function nextEvent<K extends keyof DeviceEvents>(device: Device, name: K, match: (...args: DeviceEvents[K]) => boolean = () => true): Promise<DeviceEvents[K]> {
  return new Promise((resolve) => {
    const listener = (...args: DeviceEvents[K]) => {
      if (!match(...args)) return;
      (device.off as (n: K, l: typeof listener) => void)(name, listener);
      resolve(args);
    };
    (device.on as (n: K, l: typeof listener) => void)(name, listener);
  });
}

/** Starts a device and resolves once it is connected. */
export async function startConnected(device: Device): Promise<void> {
  const connected = nextEvent(device, 'connected');
  await device.start();
  await connected;
}

/** A service identity (`checker`) subscribed to `filter` at QoS 1: it sees the fleet's messages. */
export async function checker(env: FleetEnv, filter: string, name = 'checker'): Promise<MqttClient> {
  const creds = await env.enroll(name, { kind: 'service' });
  const client = await env.connect(creds, { clean: false });
  await client.subscribeAsync(filter, { qos: 1 });
  return client;
}

/** Stops the broker and starts a new one on the same port and data dir. */
export async function restartBroker(broker: Service, dataDir: string, beforeStart: () => Promise<void> = async () => {}): Promise<Service> {
  await broker.stop();
  await beforeStart();
  return startBrokerProcess(dataDir, ['--port', String(broker.port)]);
}

export async function revokeDevice(env: FleetEnv, id: string): Promise<void> {
  const res = await postJson(`${env.url}/v1/devices/${id}/revoke`, {}, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
  if (res.status !== 200) throw new Error(`revoke ${id}: ${res.status} ${res.text()}`);
}
