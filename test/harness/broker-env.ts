import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { logged, loggedField, startService, type Service } from './cli.js';
import { startProvisioningEnv, type ProvisioningEnv } from './fleet-env.js';
import { postJson } from './https-client.js';
import { makeCsr, newKey } from './csr.js';

export interface DeviceCredentials {
  id: string;
  serial: string;
  /** Leaf then intermediate, PEM, as a TLS client presents it. */
  chain: string;
  key: string;
  chainFile: string;
  keyFile: string;
}

export interface FleetEnv extends ProvisioningEnv {
  broker: Service;
  brokerUrl: string;
  healthUrl: string;
  caFile: string;
  /** Enrolls a device (or service) through provisioning and writes its credentials to files. */
  enroll(id: string, opts?: { certTtl?: string; kind?: 'device' | 'service' }): Promise<DeviceCredentials>;
  /** mqtt.js over mqtts with the device's certificate; clientId defaults to its id. */
  connect(creds: DeviceCredentials, opts?: IClientOptions): Promise<MqttClient>;
  /** Restarts nothing; stops broker then provisioning and removes the temp dir. */
  stop(): Promise<void>;
}

/** `tlsfleet broker` on free ports beside a data dir. */
export function startBrokerProcess(dataDir: string, extra: string[] = []): Promise<Service> {
  return startService(['broker', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0', '--health-port', '0', ...extra], logged('broker listening'));
}

/** The MQTT-over-WebSockets URL (wss://host:port/mqtt) of a broker started with --ws-port. */
export function wssUrlOf(broker: Service): string {
  return `${loggedField(broker, 'broker listening', 'wsUrl')}/mqtt`;
}

/** The health port's base URL (http://127.0.0.1:P) of a broker started with --health-port. */
export function healthUrlOf(broker: Service): string {
  return loggedField(broker, 'broker listening', 'healthUrl');
}

export async function startFleetEnv(opts: { brokerArgs?: string[]; provisioningArgs?: string[] } = {}): Promise<FleetEnv> {
  const env = await startProvisioningEnv({ serviceArgs: opts.provisioningArgs });
  let broker: Service;
  try {
    broker = await startBrokerProcess(env.dataDir, opts.brokerArgs);
  } catch (err) {
    // The caller never gets an env to stop: without this, provisioning outlives the test.
    await env.stop();
    throw err;
  }
  const healthUrl = healthUrlOf(broker);
  const caFile = join(env.dataDir, 'ca-bundle.pem');
  return {
    ...env,
    broker,
    brokerUrl: broker.url,
    healthUrl,
    caFile,
    enroll: (id, o = {}) => enrollAt(env, id, o),
    connect(creds, o = {}) {
      // allowRetries false: a close without CONNACK rejects instead of leaving the promise pending.
      return mqtt.connectAsync(
        broker.url,
        {
          clientId: creds.id,
          cert: creds.chain,
          key: creds.key,
          ca: env.ca,
          protocolVersion: 4,
          reconnectPeriod: 0,
          connectTimeout: 10_000,
          ...o,
        },
        false,
      );
    },
    async stop() {
      await broker.stop();
      await env.stop();
    },
  };
}

let enrolled = 0;

/**
 * Enrolls `id` through the provisioning service of `env` (a device by default) and writes
 * its chain and key to files in env.dir. Also serves a second, unrelated CA's data dir.
 */
export async function enrollAt(env: ProvisioningEnv, id: string, o: { certTtl?: string; kind?: 'device' | 'service' } = {}): Promise<DeviceCredentials> {
  const token = await mintToken(env, id, o.kind ?? 'device', seconds(o.certTtl ?? '1h'));
  const key = newKey();
  const res = await postJson(`${env.url}/v1/enroll`, { token, csr: await makeCsr(key) }, { ca: env.ca });
  if (res.status !== 201) throw new Error(`enroll ${id}: ${res.status} ${res.text()}`);
  const body = res.json();
  const base = join(env.dir, `${id}-${enrolled++}`);
  writeFileSync(`${base}.pem`, body.chain);
  writeFileSync(`${base}.key`, key.privatePem, { mode: 0o600 });
  return { id, serial: body.serial, chain: body.chain, key: key.privatePem, chainFile: `${base}.pem`, keyFile: `${base}.key` };
}

/** A token minted online by the admin: a `tlsfleet token` process per token costs most of a second. */
export async function mintToken(env: ProvisioningEnv, deviceId: string, kind: 'device' | 'service', certTtlSeconds: number): Promise<string> {
  const res = await postJson(`${env.url}/v1/tokens`, { deviceId, kind, certTtlSeconds }, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
  if (res.status !== 201) throw new Error(`token for ${kind} ${deviceId}: ${res.status} ${res.text()}`);
  return res.json().token;
}

/** '5s', '10m', '1h', '2d' → seconds. */
function seconds(ttl: string): number {
  const m = /^(\d+)([smhd])$/.exec(ttl);
  if (!m) throw new Error(`bad certTtl ${ttl}`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}
