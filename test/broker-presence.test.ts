import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { startBrokerProcess, startFleetEnv, type DeviceCredentials, type FleetEnv } from './harness/broker-env.js';
import { grantedQos, inbox, metric, rawMqtt, within, type Inbox } from './harness/broker-probe.js';
import { startClusterEnv, type ClusterEnv } from './harness/cluster-env.js';
import { revokeDevice } from './harness/device-env.js';
import { startRedis, type RedisServer } from './harness/redis.js';

// Presence events from real broker processes: a service subscribed to $tlsfleet/events/#
// sees each session accepted and ended, with the reason, once, also across a Redis cluster.

type PresenceEvent = { type: string; id: string; kind: string; serial: string; address: string; at: string; reason?: string };

/** The next presence event of `type` for `id` in `box`, parsed; checks the topic it came on. */
async function presence(box: Inbox, type: 'connected' | 'disconnected', id: string): Promise<PresenceEvent & { qos: number; retain: boolean }> {
  const m = await within(box.next((x) => x.topic === `$tlsfleet/events/${type}/${id}`), 10_000, `${type} event for ${id}`);
  return { ...(JSON.parse(m.payload) as PresenceEvent), qos: m.qos, retain: m.retain };
}

const count = (box: Inbox, type: string, id: string) => box.messages.filter((m) => m.topic === `$tlsfleet/events/${type}/${id}`).length;

describe('presence events from one broker', () => {
  let env: FleetEnv;
  let watcher: MqttClient;
  let box: Inbox;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    env = await startFleetEnv();
    watcher = await env.connect(await env.enroll('presence-watch', { kind: 'service' }));
    box = inbox(watcher);
    expect(await grantedQos(watcher, '$tlsfleet/events/#')).toBe(1);
  }, 60_000);
  afterAll(async () => {
    for (const c of [...clients, watcher]) c?.end(true);
    await env?.stop();
  });

  const connect = async (creds: DeviceCredentials, opts = {}) => {
    const c = await env.connect(creds, opts);
    clients.push(c);
    return c;
  };

  it('announces an accepted session with its identity, serial, address and time, QoS 1 and not retained', async () => {
    const dev = await env.enroll('pr-1');
    const before = Date.now();
    await connect(dev);
    const e = await presence(box, 'connected', 'pr-1');
    expect(e).toMatchObject({ type: 'connected', id: 'pr-1', kind: 'device', address: '127.0.0.1', qos: 1, retain: false });
    expect(e.serial).toBe(new X509Certificate(dev.chain).serialNumber.toLowerCase());
    expect(Date.parse(e.at)).toBeGreaterThanOrEqual(before - 1000);
    expect(e.reason).toBeUndefined();
  });

  it('says `client` when the device sends DISCONNECT, and `error` when its connection just drops', async () => {
    const clean = await connect(await env.enroll('pr-2'));
    await presence(box, 'connected', 'pr-2');
    await clean.endAsync();
    expect((await presence(box, 'disconnected', 'pr-2')).reason).toBe('client');

    const dropped = await rawMqtt(env.broker.port, await env.enroll('pr-3'), env.ca);
    dropped.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'pr-3', keepalive: 60 });
    await dropped.next('connack');
    await presence(box, 'connected', 'pr-3');
    dropped.socket.destroy();
    expect((await presence(box, 'disconnected', 'pr-3')).reason).toBe('error');
  });

  it('says `revoked` when a revocation closes the session', async () => {
    await connect(await env.enroll('pr-4'));
    await presence(box, 'connected', 'pr-4');
    await revokeDevice(env, 'pr-4');
    expect((await presence(box, 'disconnected', 'pr-4')).reason).toBe('revoked');
  });

  it('says `takeover` for the older session when the same identity connects again, before announcing the newer one', async () => {
    const dev = await env.enroll('pr-5');
    await connect(dev);
    await presence(box, 'connected', 'pr-5');
    await connect(dev);
    const gone = await presence(box, 'disconnected', 'pr-5');
    expect(gone.reason).toBe('takeover');
    await within(box.next((m) => m.topic === '$tlsfleet/events/connected/pr-5' && box.messages.filter((x) => x.topic === m.topic).length === 2), 10_000, 'the second connected event');
    const order = box.messages.filter((m) => m.topic.endsWith('/pr-5')).map((m) => m.topic.split('/')[2]);
    expect(order).toEqual(['connected', 'disconnected', 'connected']);
  });

  it('says `timeout` when the keep alive passes with nothing from the device', async () => {
    const silent = await rawMqtt(env.broker.port, await env.enroll('pr-6'), env.ca);
    silent.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'pr-6', keepalive: 1 });
    await silent.next('connack');
    // Aedes closes after 1.5 keep-alive periods of silence [MQTT-3.1.2-24].
    expect((await presence(box, 'disconnected', 'pr-6')).reason).toBe('timeout');
    await silent.closed;
  });

  it('says `expired` when the certificate runs out during the session', async () => {
    await connect(await env.enroll('pr-7', { certTtl: '4s' }));
    await presence(box, 'connected', 'pr-7');
    expect((await presence(box, 'disconnected', 'pr-7')).reason).toBe('expired');
  });

  it('flags an identity taken over from another address as shared, and not one back from its own address', async () => {
    const dev = await env.enroll('pr-9');
    const before = await metric(env.healthUrl, 'tlsfleet_broker_shared_identity_total');
    await connect(dev, { localAddress: '127.0.0.1' });
    await presence(box, 'connected', 'pr-9');
    const again = await connect(dev, { localAddress: '127.0.0.1' });
    await within(box.next(() => count(box, 'connected', 'pr-9') === 2), 10_000, 'the second session');
    expect(await metric(env.healthUrl, 'tlsfleet_broker_shared_identity_total')).toBe(before);
    const clone = await connect(dev, { localAddress: '127.0.0.2' });
    const third = await within(box.next((m) => m.topic === '$tlsfleet/events/connected/pr-9' && count(box, 'connected', 'pr-9') === 3), 10_000, 'the clone\'s session');
    expect(JSON.parse(third.payload)).toMatchObject({ address: '127.0.0.2' });
    expect(await metric(env.healthUrl, 'tlsfleet_broker_shared_identity_total')).toBe(before + 1);
    expect(await metric(env.healthUrl, 'tlsfleet_broker_shared_identities')).toBeGreaterThanOrEqual(1);
    expect(env.broker.output()).toMatch(/"client":"pr-9","address":"127.0.0.2","previousAddress":"127.0.0.1".*shared or cloned certificate/);
    for (const c of [again, clone]) c.end(true);
  });

  it('never lets a device subscribe to or publish presence events, and counts what it published', async () => {
    const dev = await connect(await env.enroll('pr-8'));
    expect(await grantedQos(dev, '$tlsfleet/events/#')).toBe(128);
    expect(await grantedQos(dev, '$tlsfleet/events/connected/pr-8')).toBe(128);
    // A forged event closes the forger's connection, as any refused PUBLISH does, and reaches nobody.
    const closed = new Promise<void>((resolve) => dev.once('close', () => resolve()));
    dev.publish('$tlsfleet/events/connected/someone', '{"type":"connected"}', { qos: 1 });
    await within(closed, 10_000, 'the forger closed');
    expect(count(box, 'connected', 'someone')).toBe(0);
    expect(await metric(env.healthUrl, 'tlsfleet_broker_presence_events_total', { type: 'connected', reason: '' })).toBeGreaterThanOrEqual(8);
    expect(await metric(env.healthUrl, 'tlsfleet_broker_presence_events_total', { type: 'disconnected', reason: 'takeover' })).toBe(3);
    // Every session revoked or expired above was closed: none is live with such a certificate.
    expect(await metric(env.healthUrl, 'tlsfleet_broker_revoked_sessions')).toBe(0);
  });
});

describe('presence events across two brokers on Redis', () => {
  let redis: RedisServer;
  let cluster: ClusterEnv;

  beforeAll(async () => {
    redis = await startRedis();
    cluster = await startClusterEnv(redis);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
    await redis?.stop();
  });

  it('publishes each event once, from the instance holding the session; a takeover across instances is one disconnected and one connected', async () => {
    const { env, brokerB, connectTo } = cluster;
    const svcB = await connectTo(brokerB.url, await env.enroll('cl-watch-b', { kind: 'service' }));
    const watchB = inbox(svcB);
    expect(await grantedQos(svcB, '$tlsfleet/events/#')).toBe(1);
    const watcherA = await connectTo(env.brokerUrl, await env.enroll('cl-watch-a2', { kind: 'service' }));
    const boxA = inbox(watcherA);
    expect(await grantedQos(watcherA, '$tlsfleet/events/#')).toBe(1);

    const dev = await env.enroll('cl-pr-1');
    await connectTo(brokerB.url, dev);
    await presence(boxA, 'connected', 'cl-pr-1');
    await presence(watchB, 'connected', 'cl-pr-1');
    // The same identity on instance A takes the session over from B.
    await connectTo(env.brokerUrl, dev);
    expect((await presence(boxA, 'disconnected', 'cl-pr-1')).reason).toBe('takeover');
    await within(boxA.next(() => count(boxA, 'connected', 'cl-pr-1') === 2), 10_000, 'the second connected event on A');
    await within(watchB.next(() => count(watchB, 'connected', 'cl-pr-1') === 2 && count(watchB, 'disconnected', 'cl-pr-1') === 1), 10_000, 'both events on B');
    // A round trip through each watcher's broker after the events: any duplicate would have arrived.
    for (const w of [watcherA, svcB]) expect(await grantedQos(w, 'devices/+/telemetry')).toBe(1);
    for (const box of [boxA, watchB]) expect([count(box, 'connected', 'cl-pr-1'), count(box, 'disconnected', 'cl-pr-1')]).toEqual([2, 1]);
  });

  it('says `shutdown` for the sessions of an instance that stops, to watchers on the other one', async () => {
    const { env, connectTo } = cluster;
    const brokerC = await startBrokerProcess(env.dataDir, ['--cluster', redis.url]);
    const watcher = await connectTo(env.brokerUrl, await env.enroll('cl-watch-c', { kind: 'service' }));
    const box = inbox(watcher);
    expect(await grantedQos(watcher, '$tlsfleet/events/#')).toBe(1);
    await connectTo(brokerC.url, await env.enroll('cl-pr-2'));
    await presence(box, 'connected', 'cl-pr-2');
    await brokerC.stop();
    expect((await presence(box, 'disconnected', 'cl-pr-2')).reason).toBe('shutdown');
  });
});
