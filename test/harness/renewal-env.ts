import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { startBrokerProcess, enrollAt, mintToken, healthUrlOf, type DeviceCredentials } from './broker-env.js';
import { grantedQos, inbox, type Inbox } from './broker-probe.js';
import { runCli, type Service } from './cli.js';
import { startProvisioningEnv, type ProvisioningEnv } from './fleet-env.js';
import { makeCsr, newKey, type TestKey } from './csr.js';

/** The service identity a broker presents to provisioning as its renewal relay. */
export const RELAY_NAME = 'broker-relay';

/**
 * Provisioning started with `--renewal-relay broker-relay`, that service identity enrolled
 * into a device state directory (`tlsfleet device enroll --state`), and brokers started with
 * `--relay-provisioning <provisioning URL> --relay-identity <that dir>`.
 */
export interface RenewalEnv {
  prov: ProvisioningEnv;
  relayState: string;
  /** Flags that make a broker relay in-band renewals to this provisioning. */
  relayArgs: string[];
  enroll(id: string, o?: { certTtl?: string; kind?: 'device' | 'service' }): Promise<DeviceCredentials>;
  /** A broker process on `dataDir` (default the provisioning's), stopped by stop(). */
  startBroker(extra: string[], dataDir?: string): Promise<Service>;
  connect(broker: Service, creds: DeviceCredentials, opts?: IClientOptions): Promise<MqttClient>;
  stop(): Promise<void>;
}

/** `relayTtlSeconds`: lifetime of the relay's own certificate (default 1 h). */
export async function startRenewalEnv(opts: { relayTtlSeconds?: number } = {}): Promise<RenewalEnv> {
  const prov = await startProvisioningEnv({ serviceArgs: ['--renewal-relay', RELAY_NAME] });
  const brokers: Service[] = [];
  const clients: MqttClient[] = [];
  try {
    const relayState = join(prov.dir, 'relay-identity');
    const token = await mintToken(prov, RELAY_NAME, 'service', opts.relayTtlSeconds ?? 3600);
    const enrolled = await runCli(['device', 'enroll', '--token', token, '--provisioning', prov.url, '--state', relayState, '--bootstrap-ca', join(prov.dataDir, 'ca-bundle.pem')]);
    if (enrolled.code !== 0) throw new Error(`relay identity not enrolled: ${enrolled.stderr}`);
    return {
      prov,
      relayState,
      relayArgs: ['--relay-provisioning', prov.url, '--relay-identity', relayState],
      enroll: (id, o = {}) => enrollAt(prov, id, o),
      async startBroker(extra, dataDir = prov.dataDir) {
        const broker = await startBrokerProcess(dataDir, extra);
        brokers.push(broker);
        return broker;
      },
      async connect(broker, creds, opts = {}) {
        const client = await mqtt.connectAsync(broker.url, { clientId: creds.id, cert: creds.chain, key: creds.key, ca: prov.ca, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ...opts }, false);
        clients.push(client);
        return client;
      },
      async stop() {
        for (const c of clients) c.end(true);
        for (const b of brokers.reverse()) await b.stop();
        await prov.stop();
      },
    };
  } catch (err) {
    await prov.stop();
    throw err;
  }
}

export { healthUrlOf };

export interface RenewAnswer {
  requestId: string | null;
  error?: { code: string; message: string; retryAfter?: number };
  deviceId?: string;
  certificate?: string;
  chain?: string;
  caBundle?: string;
  serial?: string;
  notAfter?: string;
  renewAfter?: string;
}

/** A device's side of in-band renewal over mqtt.js: subscribed to its own `renewed` topic, answers recorded. */
export interface RenewalProbe {
  readonly box: Inbox;
  /** Publishes `payload` (an object is sent as JSON) to the own renew topic at QoS 1; resolves at PUBACK. */
  send(payload: unknown): Promise<void>;
  /** The first answer (received or to come) whose requestId is `requestId`. */
  answer(requestId: string | null): Promise<RenewAnswer>;
}

export async function renewalProbe(client: MqttClient, id: string): Promise<RenewalProbe> {
  const box = inbox(client);
  const granted = await grantedQos(client, `$tlsfleet/certificates/${id}/renewed`);
  if (granted !== 1) throw new Error(`subscription to the own renewed topic granted ${granted}`);
  return {
    box,
    send: async (payload) => {
      await client.publishAsync(`$tlsfleet/certificates/${id}/renew`, Buffer.isBuffer(payload) || typeof payload === 'string' ? payload : JSON.stringify(payload), { qos: 1 });
    },
    answer: async (requestId) => {
      const m = await box.next((x) => x.topic === `$tlsfleet/certificates/${id}/renewed` && (JSON.parse(x.payload) as RenewAnswer).requestId === requestId);
      return JSON.parse(m.payload) as RenewAnswer;
    },
  };
}

/** A fresh P-256 key and its CSR, PEM. */
export async function freshCsr(): Promise<{ key: TestKey; csr: string }> {
  const key = newKey();
  return { key, csr: await makeCsr(key) };
}
