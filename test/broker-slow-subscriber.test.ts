import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { startFleetEnv, type DeviceCredentials, type FleetEnv } from './harness/broker-env.js';
import { grantedQos, metric, metricUntil, rawMqtt, within, type RawMqtt } from './harness/broker-probe.js';

// One device that stops reading, subscribed to a service's fan-out (issue 19, item 11):
// the service's messages to every other device must keep flowing. 200 messages of 48 KiB
// per device: past the 1 MiB backlog plus the ~4 MB the kernel buffers on loopback for a
// reader that never reads (measured), so the slow one falls behind halfway through.
const ROUNDS = 200;
const BODY = 'x'.repeat(48 * 1024);

describe('a slow subscriber', () => {
  let env: FleetEnv;
  let service: DeviceCredentials;
  const clients: MqttClient[] = [];
  const raws: RawMqtt[] = [];

  beforeAll(async () => {
    env = await startFleetEnv();
    service = await env.enroll('fanout', { kind: 'service' });
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    for (const r of raws) r.socket.destroy();
    await env?.stop();
  });

  /** Devices that read at once, each counting the rounds it got on its command topic. */
  async function fastDevices(prefix: string, qos: 0 | 1) {
    return Promise.all(
      [1, 2, 3].map(async (n) => {
        const creds = await env.enroll(`${prefix}-${n}`);
        const c = await env.connect(creds);
        c.on('error', () => undefined);
        clients.push(c);
        expect(await grantedQos(c, `devices/${creds.id}/commands/#`, qos)).toBe(qos);
        const got = new Set<number>();
        let complete: () => void = () => undefined;
        const all = new Promise<void>((resolve) => (complete = resolve));
        c.on('message', (_topic, payload) => {
          got.add(Number(payload.subarray(0, payload.indexOf(':')).toString()));
          if (got.size === ROUNDS) complete();
        });
        return { id: creds.id, got, all };
      }),
    );
  }

  /** A device that subscribes, then never reads another byte. */
  async function stalledDevice(id: string, qos: 0 | 1): Promise<RawMqtt> {
    const creds = await env.enroll(id);
    const raw = await rawMqtt(env.broker.port, creds, env.ca);
    raws.push(raw);
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: id, keepalive: 0 });
    await raw.next('connack');
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `devices/${id}/commands/#`, qos }] });
    expect(((await raw.next('suback')) as { granted: number[] }).granted).toEqual([qos]);
    // A paused socket notices no close either: the broker's gauge says whether it is connected.
    raw.socket.pause();
    return raw;
  }
  const connected = () => metric(env.healthUrl, 'tlsfleet_broker_connected_clients');

  /**
   * Three devices that read, one stalled, all on the service's fan-out at `qos`; resolves
   * once every fast device has every round, with the broker's connection count from before
   * the fan-out began.
   */
  async function fanOutPastOneStalled(prefix: string, qos: 0 | 1) {
    const fast = await fastDevices(`${prefix}-fast`, qos);
    await stalledDevice(`${prefix}-slow`, qos);
    const svc = await serviceClient();
    const withSlow = await connected();
    fanOut(svc, [...fast.map((f) => f.id), `${prefix}-slow`], qos);
    await within(Promise.all(fast.map((f) => f.all)), 60_000, 'every fast device receiving every round');
    for (const f of fast) expect(f.got.size).toBe(ROUNDS);
    return { withSlow };
  }

  /** The service's connection (taking over the previous test's). */
  async function serviceClient(): Promise<MqttClient> {
    const svc = await env.connect(service);
    svc.on('error', () => undefined);
    clients.push(svc);
    return svc;
  }
  /** The service publishes ROUNDS rounds, one message to each device per round, without waiting for each. */
  function fanOut(svc: MqttClient, ids: string[], qos: 0 | 1): void {
    for (let i = 0; i < ROUNDS; i++) for (const id of ids) svc.publish(`devices/${id}/commands/bulk`, `${i}:${BODY}`, { qos });
  }

  it('costs the other devices nothing at QoS 0: they get every message while it is stalled, and its messages are dropped and counted', async () => {
    const dropsBefore = await metric(env.healthUrl, 'tlsfleet_broker_slow_subscriber_drops_total');
    const { withSlow } = await fanOutPastOneStalled('q0', 0);
    // Aedes would have held the service until its drain timeout cut the stalled device.
    expect(await connected()).toBe(withSlow);
    expect(await metric(env.healthUrl, 'tlsfleet_broker_slow_subscriber_drops_total')).toBeGreaterThan(dropsBefore);
    // Still never draining, it is cut by the drain timeout (10 s).
    await metricUntil(env.healthUrl, 'tlsfleet_broker_slow_subscriber_disconnects_total', { reason: 'drain_timeout' }, (v) => v >= 1, 30_000);
    expect(await connected()).toBe(withSlow - 1);
  }, 90_000);

  it('disconnects it at QoS 1 once it is a backlog behind, and the other devices get every message', async () => {
    const before = await metric(env.healthUrl, 'tlsfleet_broker_slow_subscriber_disconnects_total', { reason: 'backlog' });
    const { withSlow } = await fanOutPastOneStalled('q1', 1);
    expect(await metric(env.healthUrl, 'tlsfleet_broker_slow_subscriber_disconnects_total', { reason: 'backlog' })).toBe(before + 1);
    expect(await connected()).toBe(withSlow - 1);
  }, 90_000);
});
