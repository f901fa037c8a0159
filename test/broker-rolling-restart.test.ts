import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import type { Device } from '@tlsfleet/device-sdk';
import { healthUrlOf, startBrokerProcess, startFleetEnv, type FleetEnv } from './harness/broker-env.js';
import { countMatches, inbox, metric, metricUntil, outputMatches, within, type Inbox } from './harness/broker-probe.js';
import type { Service } from './harness/cli.js';
import { newDevice, startConnected } from './harness/device-env.js';
import { startHaproxy, type Haproxy } from './harness/haproxy.js';
import { freePort } from './harness/free-port.js';
import { startRedis, type RedisServer } from './harness/redis.js';

const DEVICES = 4;
/** Publish pace of each device, ms: a steady stream, not a wait on anything. */
const PACE_MS = 25;
const DROPS = 'tlsfleet_broker_queue_drops_total';

interface Instance {
  name: string;
  /** Its name in HAProxy's backend. */
  server: string;
  port: number;
  healthPort: number;
  service: Service;
  healthUrl: string;
}

/**
 * Rolling restart of two `tlsfleet broker --cluster` instances behind Debian's HAProxy
 * (`mode tcp`, /readyz health checks: docs/operations.md's config), with SDK devices
 * publishing numbered QoS 1 messages throughout and a persistent backend subscriber: every
 * message the SDK saw acknowledged must reach the subscriber.
 */
describe('rolling restart of clustered brokers behind HAProxy', () => {
  let redis: RedisServer;
  let env: FleetEnv;
  let haproxy: Haproxy;
  const instances: Instance[] = [];
  /** Every broker process started, the stopped ones included: their logs are evidence too. */
  const processes: Service[] = [];
  const devices: Device[] = [];
  let subscriber: MqttClient | undefined;

  const args = (port: number, healthPort: number) => ['--cluster', redis.url, '--port', String(port), '--health-port', String(healthPort)];
  const healthOf = healthUrlOf;
  /** The same instance again, on the same ports. */
  const start = async (i: Instance) => {
    i.service = await startBrokerProcess(env.dataDir, args(i.port, i.healthPort));
    i.healthUrl = healthOf(i.service);
    processes.push(i.service);
  };
  const connected = (i: Instance) => metricUntil(i.healthUrl, 'tlsfleet_broker_connected_clients', {}, (v) => v === DEVICES + 1, 30_000);

  beforeAll(async () => {
    redis = await startRedis();
    const [pA, hA, pB, hB] = [await freePort(), await freePort(), await freePort(), await freePort()];
    env = await startFleetEnv({ brokerArgs: args(pA, hA) });
    instances.push({ name: 'A', server: 'broker1', port: pA, healthPort: hA, service: env.broker, healthUrl: env.healthUrl });
    processes.push(env.broker);
    const b: Instance = { name: 'B', server: 'broker2', port: pB, healthPort: hB, service: undefined as unknown as Service, healthUrl: '' };
    await start(b);
    instances.push(b);
    haproxy = await startHaproxy({ dir: env.dir, proxy: 'none', name: 'rolling', backends: instances.map((i) => ({ port: i.port, healthPort: i.healthPort })) });
  }, 90_000);

  afterAll(async () => {
    subscriber?.end(true);
    for (const d of devices) await d.close();
    await haproxy?.stop();
    // Every broker process, the restarted ones included (stop() on an exited one just returns).
    for (const p of processes) await p.stop();
    await env?.stop();
    await redis?.stop();
  });

  it('loses no acknowledged QoS 1 message while A then B are restarted, and the sessions resume on the other instance', async () => {
    const lb = `mqtts://127.0.0.1:${haproxy.port}`;
    const [a, b] = instances as [Instance, Instance];

    // The backend: a persistent service session through the balancer that reconnects by itself.
    const svc = await env.enroll('rr-backend', { kind: 'service' });
    subscriber = mqtt.connect(lb, { clientId: svc.id, cert: svc.chain, key: svc.key, ca: env.ca, protocolVersion: 4, clean: false, reconnectPeriod: 100, connectTimeout: 10_000 });
    subscriber.on('error', () => undefined);
    const subscriberSessions: boolean[] = [];
    subscriber.on('connect', (connack) => subscriberSessions.push(connack.sessionPresent));
    const box: Inbox = inbox(subscriber);
    await within(new Promise((resolve) => subscriber!.once('connect', resolve)), 20_000, 'subscriber connected');
    await subscriber.subscribeAsync('devices/+/telemetry', { qos: 1 });

    for (let n = 0; n < DEVICES; n++) {
      const device = await newDevice(env, `rr-dev${n}`, { brokerUrl: lb, reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } });
      devices.push(device);
      await startConnected(device);
      await device.subscribe('commands/#', () => undefined);
    }
    // Both instances serve: HAProxy spreads the connections, round robin.
    const [onA, onB] = await Promise.all([a, b].map((i) => metricUntil(i.healthUrl, 'tlsfleet_broker_connected_clients', {}, (v) => v >= 1, 30_000)));
    expect((onA ?? 0) + (onB ?? 0)).toBe(DEVICES + 1);

    // Each device publishes seq 1, 2, 3… every PACE_MS; `acked` holds what the SDK saw PUBACKed.
    const acked = new Set<string>();
    const failed: string[] = [];
    const pending: Promise<void>[] = [];
    const seq = devices.map(() => 0);
    const publishing = setInterval(() => {
      devices.forEach((device, n) => {
        const payload = `rr-dev${n}:${++seq[n]!}`;
        pending.push(device.publish('telemetry', payload).then(() => void acked.add(payload), (err: Error) => void failed.push(`${payload} ${err.message}`)));
      });
    }, PACE_MS);
    const progress = async (what: string) => {
      // Fresh messages from every device reached the subscriber: the fleet is flowing again.
      const marks = seq.map((s, n) => `rr-dev${n}:${s + 1}`);
      await within(Promise.all(marks.map((p) => box.next((m) => m.payload === p))), 30_000, what);
    };
    const deviceSessions: boolean[] = [];
    for (const d of devices) d.on('connected', ({ sessionPresent }) => deviceSessions.push(sessionPresent));
    // A stopped instance's counters go with it: read each one just before its SIGTERM.
    const drops: number[] = [];

    try {
      await progress('messages flowing before the restart');
      for (const [down, other] of [[a, b], [b, a]] as const) {
        // It holds sessions (round robin before, all of them after A's restart): they must move.
        expect(await metric(down.healthUrl, 'tlsfleet_broker_connected_clients')).toBeGreaterThan(0);
        drops.push(await metric(down.healthUrl, DROPS));
        const code = await down.service.stop();
        expect(code, `${down.name} on SIGTERM:\n${down.service.output().slice(-4000)}`).toBe(0);
        // Every session, the stopped instance's included, is now held by the other one.
        await connected(other);
        await progress(`messages flowing through ${other.name} while ${down.name} is down`);
        // As an operator would: the next instance goes only once the balancer sends to this one again.
        const up = new RegExp(`Server brokers/${down.server} is UP`);
        const ups = countMatches(haproxy.output(), up);
        await start(down);
        await within(outputMatches(haproxy, up, ups), 30_000, `HAProxy marking ${down.name} up`);
      }
      await progress('messages flowing after the rolling restart');
    } finally {
      clearInterval(publishing);
    }
    await Promise.all(pending);
    expect(failed).toEqual([]);
    expect(acked.size).toBeGreaterThan(0);
    // Each device moved at least once, and always back into its persistent session; so did the backend.
    expect(deviceSessions.length).toBeGreaterThanOrEqual(DEVICES);
    expect(deviceSessions.every(Boolean)).toBe(true);
    expect(subscriberSessions.length).toBeGreaterThanOrEqual(2);
    expect(subscriberSessions.slice(1).every(Boolean)).toBe(true);

    await within(
      (async () => {
        for (const p of acked) await box.next((m) => m.payload === p);
      })(),
      30_000,
      'every acknowledged message at the subscriber',
    ).catch(() => undefined);
    const received = new Map<string, number>();
    for (const m of box.messages) received.set(m.payload, (received.get(m.payload) ?? 0) + 1);
    expect([...acked].filter((p) => !received.has(p))).toEqual([]);
    // An overflowing offline queue drops by design: it must not pass here as "no loss".
    drops.push(...(await Promise.all([a, b].map((i) => metric(i.healthUrl, DROPS)))));
    expect(drops).toEqual([0, 0, 0, 0]);
    // The draining instances' drops too, which no scrape can see: the broker logs each one.
    expect(processes.map((p) => countMatches(p.output(), /offline queue full/))).toEqual(processes.map(() => 0));
    const duplicates = [...received.values()].reduce((sum, n) => sum + n - 1, 0);
    console.log(`rolling restart: ${acked.size} acknowledged, ${box.messages.length} received, ${duplicates} duplicates`);
  });
});
