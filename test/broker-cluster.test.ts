import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import type { FleetEnv } from './harness/broker-env.js';
import { startClusterEnv, type ClusterEnv } from './harness/cluster-env.js';
import { closedAt, inbox, metric, metricUntil, rawMqtt, within } from './harness/broker-probe.js';
import { runCli, type Service } from './harness/cli.js';
import { revokeDevice } from './harness/device-env.js';
import { startRedis, type RedisServer } from './harness/redis.js';

/**
 * Two `tlsfleet broker --cluster redis://…` processes on one data dir (so both see the same
 * trust bundle and crl.der) sharing subscriptions, retained messages, persistent sessions
 * and clientId takeovers through a real redis-server on 127.0.0.1.
 */
describe('brokers clustered through Redis', () => {
  let redis: RedisServer;
  let cluster: ClusterEnv;
  let env: FleetEnv;
  let brokerB: Service;
  let healthB: string;
  let connectTo: ClusterEnv['connectTo'];
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    cluster = await startClusterEnv(redis);
    ({ env, brokerB, healthB, connectTo } = cluster);
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.end(true);
    await cluster?.stop();
    await redis?.stop();
  });

  it('refuses a --cluster value that is not a redis:// URL, without echoing a password', async () => {
    const res = await runCli(['broker', '--data-dir', env.dataDir, '--cluster', 'http://user:s3cret@127.0.0.1:1']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/redis:\/\//);
    expect(res.stdout + res.stderr).not.toContain('s3cret');
  });

  it('delivers a message published on A to a subscriber on B, and one published on B to a subscriber on A', async () => {
    const svc = await env.enroll('cl-svc', { kind: 'service' });
    const dev = await env.enroll('cl-dev1');
    const svcOnB = await connectTo(brokerB.url, svc);
    const fromA = inbox(svcOnB);
    await svcOnB.subscribeAsync('devices/+/telemetry', { qos: 1 });
    const devOnA = await connectTo(env.brokerUrl, dev);
    const cmds = inbox(devOnA);
    await devOnA.subscribeAsync('devices/cl-dev1/commands/#', { qos: 1 });

    await devOnA.publishAsync('devices/cl-dev1/telemetry', 'a-to-b', { qos: 1 });
    expect((await within(fromA.next((m) => m.payload === 'a-to-b'), 10_000, 'A→B')).topic).toBe('devices/cl-dev1/telemetry');

    await svcOnB.publishAsync('devices/cl-dev1/commands/ping', 'b-to-a', { qos: 1 });
    expect((await within(cmds.next((m) => m.payload === 'b-to-a'), 10_000, 'B→A')).topic).toBe('devices/cl-dev1/commands/ping');
  });

  it('gives a new subscriber on B the retained message published on A', async () => {
    const dev = await env.enroll('cl-dev2');
    const devOnA = await connectTo(env.brokerUrl, dev);
    await devOnA.publishAsync('devices/cl-dev2/state', 'retained-on-a', { qos: 1, retain: true });
    const svc = await env.enroll('cl-svc2', { kind: 'service' });
    const svcOnB = await connectTo(brokerB.url, svc);
    const box = inbox(svcOnB);
    await svcOnB.subscribeAsync('devices/cl-dev2/state', { qos: 1 });
    const m = await within(box.next((x) => x.payload === 'retained-on-a'), 10_000, 'retained on B');
    expect(m.retain).toBe(true);
  });

  // Aedes 1.2 numbers a publish as it starts and drops a delivery numbered below the last one
  // the client got; a retained publish is emitted only after its store in Redis, after the next.
  it.each([0, 1] as const)('delivers a retained QoS %i message and the one published right after it on A to a live subscriber on B', async (qos) => {
    const dev = await env.enroll(`cl-ret${qos}`);
    const svc = await env.enroll(`cl-ret-svc${qos}`, { kind: 'service' });
    const svcOnB = await connectTo(brokerB.url, svc);
    const box = inbox(svcOnB);
    await svcOnB.subscribeAsync(`devices/cl-ret${qos}/#`, { qos: 1 });
    const devOnA = await connectTo(env.brokerUrl, dev);
    await Promise.all([
      devOnA.publishAsync(`devices/cl-ret${qos}/state`, 'retained-state', { qos, retain: true }),
      devOnA.publishAsync(`devices/cl-ret${qos}/telemetry`, 'right-after', { qos }),
    ]);
    await within(box.next((m) => m.payload === 'right-after'), 10_000, 'the second message on B');
    expect(await within(box.next((m) => m.payload === 'retained-state'), 10_000, 'the retained message on B')).toMatchObject({ topic: `devices/cl-ret${qos}/state`, retain: false });
    // A marker from A after both: a duplicate of either would have come before it.
    await devOnA.publishAsync(`devices/cl-ret${qos}/telemetry`, 'marker', { qos: 1 });
    await within(box.next((m) => m.payload === 'marker'), 10_000, 'the marker on B');
    expect(box.messages.map((m) => m.payload).sort()).toEqual(['marker', 'retained-state', 'right-after']);
  });

  it('delivers a QoS 1 message to a live persistent subscriber on B when a QoS 0 one published after it on A is emitted first', async () => {
    const dev = await env.enroll('cl-mixed');
    const svc = await env.enroll('cl-mixed-svc', { kind: 'service' });
    // Persistent: A queues each QoS 1 message for it in Redis before emitting it; QoS 0 goes at once.
    const svcOnB = await connectTo(brokerB.url, svc, { clean: false });
    const box = inbox(svcOnB);
    await svcOnB.subscribeAsync('devices/cl-mixed/#', { qos: 1 });
    const devOnA = await connectTo(env.brokerUrl, dev);
    // Redis holds every write (the queue, PUBLISH) for a second: the QoS 0 message's PUBLISH
    // is then sent before the QoS 1 one's, which waits for its queue write to be answered.
    await redis.cli(['CLIENT', 'PAUSE', '1000', 'WRITE']);
    await devOnA.publishAsync('devices/cl-mixed/ack', 'qos-1', { qos: 1 });
    await devOnA.publishAsync('devices/cl-mixed/telemetry', 'qos-0', { qos: 0 });
    await within(box.next((m) => m.payload === 'qos-0'), 10_000, 'the QoS 0 message on B');
    expect(await within(box.next((m) => m.payload === 'qos-1'), 10_000, 'the QoS 1 message on B')).toMatchObject({ qos: 1 });
  });

  it('moves a persistent session from A to B with the QoS 1 messages queued while it was offline', async () => {
    const dev = await env.enroll('cl-dev3');
    const first = await connectTo(env.brokerUrl, dev, { clean: false });
    await first.subscribeAsync('devices/cl-dev3/commands/#', { qos: 1 });
    const before = await metric(env.healthUrl, 'tlsfleet_broker_connected_clients');
    await first.endAsync();
    // Offline on A before anything is published for it.
    await metricUntil(env.healthUrl, 'tlsfleet_broker_connected_clients', {}, (v) => v === before - 1, 10_000);

    const svc = await env.enroll('cl-svc3', { kind: 'service' });
    const svcOnA = await connectTo(env.brokerUrl, svc);
    await svcOnA.publishAsync('devices/cl-dev3/commands/one', 'q1', { qos: 1 });
    await svcOnA.publishAsync('devices/cl-dev3/commands/two', 'q2', { qos: 1 });

    // Subscribe before CONNACK is handled: the queued messages follow CONNACK at once.
    const second = mqtt.connect(brokerB.url, {
      clientId: dev.id, cert: dev.chain, key: dev.key, ca: env.ca, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, clean: false,
    });
    clients.push(second);
    const box = inbox(second);
    const [connack] = (await within(new Promise((resolve, reject) => {
      second.once('connect', (p) => resolve([p]));
      second.once('error', reject);
    }), 10_000, 'reconnect to B')) as [{ sessionPresent: boolean }];
    expect(connack.sessionPresent).toBe(true);
    await within(box.next((m) => m.payload === 'q1'), 10_000, 'queued q1 on B');
    await within(box.next((m) => m.payload === 'q2'), 10_000, 'queued q2 on B');
    expect(box.messages.filter((m) => m.payload === 'q1' || m.payload === 'q2').every((m) => m.qos === 1)).toBe(true);
  });

  it('sends CONNACK before any message when a persistent session resumes while messages for it keep arriving [MQTT-3.2.0-1]', async () => {
    const svc = await env.enroll('cl-svc6', { kind: 'service' });
    const dev = await env.enroll('cl-dev6');
    const first = await connectTo(env.brokerUrl, svc, { clean: false });
    await first.subscribeAsync('devices/cl-dev6/telemetry', { qos: 1 });
    await first.endAsync();
    // A steady stream through B while A restores the session's subscription, then answers CONNACK.
    const devOnB = await connectTo(brokerB.url, dev);
    let flowing = true;
    const stream = (async () => {
      for (let n = 0; flowing && n < 100_000; n++) await devOnB.publishAsync('devices/cl-dev6/telemetry', String(n), { qos: 1 });
    })();
    try {
      for (let round = 0; round < 20; round++) {
        const resumed = mqtt.connect(env.brokerUrl, {
          clientId: svc.id, cert: svc.chain, key: svc.key, ca: env.ca, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, clean: false,
        });
        // mqtt.js handles a PUBLISH that comes before CONNACK, then stalls on its PUBACK until connectTimeout.
        const firstEvent = await within(new Promise<string>((resolve, reject) => {
          resumed.once('message', () => resolve('message'));
          resumed.once('connect', () => resolve('connect'));
          resumed.once('error', reject);
        }), 15_000, `resume ${round}`);
        await resumed.endAsync(true);
        expect(firstEvent, `resume ${round}`).toBe('connect');
      }
    } finally {
      flowing = false;
      await stream;
    }
  });

  it('replays every queued QoS 1 message to a resumed session, more than 1,000 left unacknowledged included', async () => {
    const svc = await env.enroll('cl-svc7', { kind: 'service' });
    const dev = await env.enroll('cl-dev7');
    // A subscriber on A that reads and never acknowledges, as one cut mid-stream: everything stays queued.
    const raw = await rawMqtt(Number(new URL(env.brokerUrl).port), svc, env.ca);
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: svc.id, clean: false, keepalive: 60 });
    expect((await within(raw.next('connack'), 10_000, 'raw CONNACK')).cmd).toBe('connack');
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/cl-dev7/telemetry', qos: 1 }] });
    await within(raw.next('suback'), 10_000, 'raw SUBACK');
    // Published on A, where the subscriber is connected: the offline-queue bound does not apply.
    const COUNT = 1_200;
    const devOnA = await connectTo(env.brokerUrl, dev);
    await Promise.all(Array.from({ length: COUNT }, (_, n) => devOnA.publishAsync('devices/cl-dev7/telemetry', `m${n}`, { qos: 1 })));
    raw.socket.destroy();
    await raw.closed;

    const resumed = mqtt.connect(brokerB.url, {
      clientId: svc.id, cert: svc.chain, key: svc.key, ca: env.ca, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, clean: false,
    });
    clients.push(resumed);
    const box = inbox(resumed);
    const all = Promise.all(Array.from({ length: COUNT }, (_, n) => box.next((m) => m.payload === `m${n}`)));
    // aedes-persistence-redis' default stopped the replay at 1,001; the rest waited for another reconnect.
    await within(all, 30_000, `all ${COUNT} queued messages replayed`).catch(() => undefined);
    expect(new Set(box.messages.map((m) => m.payload)).size).toBe(COUNT);
  });

  it('closes the connection on A when the same device connects to B (clientId takeover)', async () => {
    const dev = await env.enroll('cl-dev4');
    const onA = await connectTo(env.brokerUrl, dev);
    const closed = closedAt(onA);
    const onB = await connectTo(brokerB.url, dev);
    await within(closed, 10_000, 'A connection closed after the takeover on B');
    expect(onB.connected).toBe(true);
    // A forgets the client; B keeps it.
    await metricUntil(healthB, 'tlsfleet_broker_connected_clients', {}, (v) => v >= 1, 5_000);
  });

  it('closes a revoked device\'s session on B within 10 s', async () => {
    const dev = await env.enroll('cl-dev5');
    const onB = await connectTo(brokerB.url, dev);
    const closed = closedAt(onB);
    await revokeDevice(env, dev.id);
    await within(closed, 10_000, 'revoked session on B closed');
  });
});
