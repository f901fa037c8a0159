import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { healthUrlOf, startBrokerProcess, startFleetEnv, type DeviceCredentials, type FleetEnv } from './broker-env.js';
import type { Service } from './cli.js';
import type { RedisServer } from './redis.js';

/** Two `tlsfleet broker --cluster` processes on one data dir (same trust bundle, same crl.der) and one Redis. */
export interface ClusterEnv {
  /** Provisioning and broker A (`env.broker`, `env.brokerUrl`, `env.healthUrl`). */
  env: FleetEnv;
  brokerB: Service;
  healthB: string;
  /** mqtt.js over mqtts to either broker, no retries; ended by `stop()`. */
  connectTo(url: string, creds: DeviceCredentials, opts?: IClientOptions): Promise<MqttClient>;
  /** Ends the clients, stops B, then A and provisioning. Redis is the caller's. */
  stop(): Promise<void>;
}

export async function startClusterEnv(redis: RedisServer): Promise<ClusterEnv> {
  const env = await startFleetEnv({ brokerArgs: ['--cluster', redis.url] });
  const brokerB = await startBrokerProcess(env.dataDir, ['--cluster', redis.url]);
  const clients: MqttClient[] = [];
  return {
    env,
    brokerB,
    healthB: healthUrlOf(brokerB),
    async connectTo(url, creds, opts = {}) {
      const client = await mqtt.connectAsync(
        url,
        { clientId: creds.id, cert: creds.chain, key: creds.key, ca: env.ca, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ...opts },
        false,
      );
      clients.push(client);
      return client;
    },
    async stop() {
      for (const c of clients) c.end(true);
      await brokerB.stop();
      await env.stop();
    },
  };
}
