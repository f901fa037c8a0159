import { renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { runCli, type Service } from './harness/cli.js';
import { enrollAt, healthUrlOf, startBrokerProcess, type DeviceCredentials } from './harness/broker-env.js';
import { startProvisioningEnv, type ProvisioningEnv } from './harness/fleet-env.js';
import { startRedis, type RedisServer } from './harness/redis.js';
import { countMatches, grantedQos, inbox, metric, metricUntil, mosquittoArgs, mosquittoSub, outputMatches, within, type Inbox } from './harness/broker-probe.js';

/** SUBACK return code 0x80 "Failure", as mqtt.js reports it. */
const SUBACK_FAILURE = 128;
const REVOKED = 'tlsfleet_broker_subscriptions_revoked_total';

/** Devices own devices/{id}/#; services read telemetry, and status while `withStatus`. */
function policy(withStatus: boolean): string {
  return JSON.stringify({
    version: 1,
    rules: [
      { name: 'own subtree', identity: 'device', allow: ['publish', 'subscribe'], topics: ['devices/{id}/#'] },
      { name: 'telemetry feed', identity: 'service', allow: ['subscribe'], topics: ['devices/+/telemetry'] },
      ...(withStatus ? [{ name: 'status feed', identity: 'service', allow: ['subscribe'], topics: ['devices/+/status'] }] : []),
    ],
  });
}

/** Replaces the file in one rename, with an mtime of its own so the watcher sees every version. */
function replaceFile(file: string, text: string, mtimeSec: number): void {
  writeFileSync(`${file}.tmp`, text);
  utimesSync(`${file}.tmp`, mtimeSec, mtimeSec);
  renameSync(`${file}.tmp`, file);
}

/** An mqtt.js client whose inbox listens before CONNACK: a persistent session's queued messages follow it at once. */
async function connectTo(url: string, ca: string, creds: DeviceCredentials, opts: IClientOptions, clients: MqttClient[]): Promise<{ client: MqttClient; box: Inbox }> {
  const client = mqtt.connect(url, { clientId: creds.id, cert: creds.chain, key: creds.key, ca, protocolVersion: 4, reconnectPeriod: 0, ...opts });
  client.on('error', () => undefined);
  clients.push(client);
  const box = inbox(client);
  await within(new Promise((resolve) => client.once('connect', resolve)), 10_000, `${creds.id} connecting`);
  return { client, box };
}

/**
 * An ACL change applies to live subscriptions at once (docs/security.md): on reload the
 * broker re-judges every live subscription and every stored one of an offline persistent
 * session, removes those no longer allowed, counts and logs each. A subscription that
 * becomes allowed is not added back: the client subscribes again.
 */
describe('broker: an ACL reload reaches live and stored subscriptions', () => {
  let env: ProvisioningEnv;
  let broker: Service;
  let healthUrl: string;
  let aclFile: string;
  let mtime = Math.floor(Date.now() / 1000) - 1000;
  const clients: MqttClient[] = [];
  let watcher: DeviceCredentials;
  let archiver: DeviceCredentials;
  let sensor: DeviceCredentials;
  let sensorClient: MqttClient;

  const connect = (creds: DeviceCredentials, opts: IClientOptions = {}) => connectTo(broker.url, env.ca, creds, opts, clients);
  const reload = async (withStatus: boolean) => {
    const before = countMatches(broker.output(), /ACL policy reloaded/);
    replaceFile(aclFile, policy(withStatus), ++mtime);
    await within(outputMatches(broker, /ACL policy reloaded/, before), 10_000, 'the ACL reload');
  };
  /** Publishes status then a telemetry marker from the sensor; resolves once `box` has the marker. */
  const statusThenMarker = async (box: Inbox, tag: string) => {
    await sensorClient.publishAsync('devices/sensor/status', `status-${tag}`, { qos: 1 });
    await sensorClient.publishAsync('devices/sensor/telemetry', `marker-${tag}`, { qos: 1 });
    await within(box.next((m) => m.payload === `marker-${tag}`), 10_000, `marker ${tag}`);
  };
  const statuses = (box: Inbox) => box.messages.filter((m) => m.topic === 'devices/sensor/status').map((m) => m.payload);

  beforeAll(async () => {
    env = await startProvisioningEnv();
    aclFile = join(env.dir, 'acl.json');
    replaceFile(aclFile, policy(true), ++mtime);
    broker = await startBrokerProcess(env.dataDir, ['--acl', aclFile]);
    healthUrl = healthUrlOf(broker);
    watcher = await enrollAt(env, 'watcher', { kind: 'service' });
    archiver = await enrollAt(env, 'archiver', { kind: 'service' });
    sensor = await enrollAt(env, 'sensor');
    sensorClient = (await connect(sensor)).client;
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await broker?.stop();
    await env?.stop();
  });

  it('refuses to start on a bad ACL file: exit 1, one line naming the file, the mistake and acl_policy, no stack trace', async () => {
    const bad = join(env.dir, 'bad-acl.json');
    writeFileSync(bad, JSON.stringify({ version: 1, rules: [{ identity: 'device', allow: ['publish'], topics: ['devices/{id}/#/x'] }] }));
    const res = await runCli(['broker', '--data-dir', env.dataDir, '--port', '0', '--acl', bad]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`^tlsfleet broker: ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: rules\\[0\\]\\.topics\\[0\\]: .+ \\(acl_policy\\)\\n$`));
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });

  it('stops a live subscription and an offline persistent session\'s stored one when a reload removes the rule, counts and logs each', async () => {
    const live = await connect(watcher);
    expect(await grantedQos(live.client, 'devices/+/status')).toBe(1);
    expect(await grantedQos(live.client, 'devices/+/telemetry')).toBe(1);
    const stored = await connect(archiver, { clean: false });
    expect(await grantedQos(stored.client, 'devices/+/status')).toBe(1);
    expect(await grantedQos(stored.client, 'devices/+/telemetry')).toBe(1);
    await statusThenMarker(live.box, 'allowed');
    expect(statuses(live.box)).toEqual(['status-allowed']);
    await stored.client.endAsync();
    // Queued for the offline session while the rule still allowed it.
    await sensorClient.publishAsync('devices/sensor/status', 'status-queued-before', { qos: 1 });

    const revokedBefore = await metric(healthUrl, REVOKED, { reason: 'acl' });
    await reload(false);
    await metricUntil(healthUrl, REVOKED, { reason: 'acl' }, (v) => v >= revokedBefore + 2);
    const lines = broker.output().split('\n').filter((l) => l.includes('subscription revoked'));
    expect(lines.some((l) => l.includes('"identity":"watcher"') && l.includes('devices/+/status') && l.includes('"session":"live"'))).toBe(true);
    expect(lines.some((l) => l.includes('"identity":"archiver"') && l.includes('devices/+/status') && l.includes('"session":"offline"'))).toBe(true);
    expect(lines.every((l) => l.includes('"level":30'))).toBe(true);

    await statusThenMarker(live.box, 'revoked');
    // The live service had the queued one too, before the reload.
    expect(statuses(live.box)).toEqual(['status-allowed', 'status-queued-before']);
    // Published while the session is offline, after the reload: not queued.
    await sensorClient.publishAsync('devices/sensor/status', 'status-queued-after', { qos: 1 });
    const back = await connect(archiver, { clean: false });
    expect(back.client.connected).toBe(true);
    await statusThenMarker(back.box, 'reconnected');
    expect(statuses(back.box)).toEqual([]);
    expect(live.client.connected).toBe(true);
  });

  it('does not add back a subscription that becomes allowed again: the client subscribes again', async () => {
    const live = await connect(watcher);
    expect(await grantedQos(live.client, 'devices/+/telemetry')).toBe(1);
    expect(await grantedQos(live.client, 'devices/+/status')).toBe(SUBACK_FAILURE);
    await reload(true);
    await statusThenMarker(live.box, 'allowed-again');
    expect(statuses(live.box)).toEqual([]);
    expect(await grantedQos(live.client, 'devices/+/status')).toBe(1);
    await statusThenMarker(live.box, 'subscribed-again');
    expect(statuses(live.box)).toEqual(['status-subscribed-again']);
  });

  it('stops a mosquitto_sub subscription on reload', async () => {
    await reload(true);
    const sub = mosquittoSub([...mosquittoArgs(broker.port, join(env.dataDir, 'ca-bundle.pem'), watcher), '-t', 'devices/+/status', '-t', 'devices/+/telemetry', '-q', '1']);
    try {
      await sub.waitFor(/Subscribed \(mid: \d+\): 1, 1/);
      await sensorClient.publishAsync('devices/sensor/status', 'mosq-before', { qos: 1 });
      await sub.waitFor(/^devices\/sensor\/status mosq-before$/m);
      const revokedBefore = await metric(healthUrl, REVOKED, { reason: 'acl' });
      await reload(false);
      await metricUntil(healthUrl, REVOKED, { reason: 'acl' }, (v) => v >= revokedBefore + 1);
      await sensorClient.publishAsync('devices/sensor/status', 'mosq-after', { qos: 1 });
      await sensorClient.publishAsync('devices/sensor/telemetry', 'mosq-marker', { qos: 1 });
      await sub.waitFor(/^devices\/sensor\/telemetry mosq-marker$/m);
      expect(sub.output()).not.toMatch(/mosq-after/);
    } finally {
      await sub.stop();
    }
  });

  it('never delivers to a persistent session what a SUBSCRIBE was refused, even queued while it was offline', async () => {
    const other = await enrollAt(env, 'neighbour');
    const nosy = await enrollAt(env, 'nosy');
    const first = await connect(nosy, { clean: false });
    const granted = await first.client.subscribeAsync({ 'devices/nosy/#': { qos: 1 }, 'devices/neighbour/#': { qos: 1 } }).catch((err: { packet?: { granted?: number[] } }) => err.packet?.granted?.map((qos) => ({ qos })) ?? []);
    expect(granted.map((g) => g.qos)).toEqual([1, SUBACK_FAILURE]);
    await first.client.endAsync();
    const neighbour = await connect(other);
    await neighbour.client.publishAsync('devices/neighbour/secret', 'not-for-nosy', { qos: 1 });
    const back = await connect(nosy, { clean: false });
    await back.client.publishAsync('devices/nosy/marker', 'nosy-marker', { qos: 1 });
    await within(back.box.next((m) => m.payload === 'nosy-marker'), 10_000, 'the marker');
    await neighbour.client.publishAsync('devices/neighbour/secret', 'live-not-for-nosy', { qos: 1 });
    await back.client.publishAsync('devices/nosy/marker', 'nosy-marker-2', { qos: 1 });
    await within(back.box.next((m) => m.payload === 'nosy-marker-2'), 10_000, 'the second marker');
    expect(back.box.messages.map((m) => m.topic)).not.toContain('devices/neighbour/secret');
  });
});

/**
 * In a cluster, a persistent session stored through another instance is unknown to the
 * reloading one: its refused subscriptions are removed as it reconnects there, and what
 * was queued for them meanwhile is not delivered.
 */
describe('broker cluster: a reload reaches a session stored through the other instance when it reconnects', () => {
  let redis: RedisServer;
  let env: ProvisioningEnv;
  let brokerA: Service;
  let brokerB: Service;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    env = await startProvisioningEnv();
    const mtime = Math.floor(Date.now() / 1000) - 1000;
    replaceFile(join(env.dir, 'acl-a.json'), policy(true), mtime);
    replaceFile(join(env.dir, 'acl-b.json'), policy(true), mtime);
    brokerA = await startBrokerProcess(env.dataDir, ['--cluster', redis.url, '--acl', join(env.dir, 'acl-a.json')]);
    brokerB = await startBrokerProcess(env.dataDir, ['--cluster', redis.url, '--acl', join(env.dir, 'acl-b.json')]);
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await brokerB?.stop();
    await brokerA?.stop();
    await env?.stop();
    await redis?.stop();
  });

  it('drops the stored subscription as broker B restores the session, counts it, and delivers nothing queued for it', async () => {
    const healthB = healthUrlOf(brokerB);
    const archiver = await enrollAt(env, 'c-archiver', { kind: 'service' });
    const sensor = await connectTo(brokerA.url, env.ca, await enrollAt(env, 'c-sensor'), {}, clients);
    const first = await connectTo(brokerA.url, env.ca, archiver, { clean: false }, clients);
    expect(await grantedQos(first.client, 'devices/+/status')).toBe(1);
    expect(await grantedQos(first.client, 'devices/+/telemetry')).toBe(1);
    await first.client.endAsync();
    const before = countMatches(brokerB.output(), /ACL policy reloaded/);
    replaceFile(join(env.dir, 'acl-b.json'), policy(false), Math.floor(Date.now() / 1000));
    await within(outputMatches(brokerB, /ACL policy reloaded/, before), 10_000, 'broker B reloading');
    const revokedBefore = await metric(healthB, REVOKED, { reason: 'acl' });
    await sensor.client.publishAsync('devices/c-sensor/status', 'queued-status', { qos: 1 });
    const back = await connectTo(brokerB.url, env.ca, archiver, { clean: false }, clients);
    await metricUntil(healthB, REVOKED, { reason: 'acl' }, (v) => v >= revokedBefore + 1);
    expect(brokerB.output()).toMatch(/"identity":"c-archiver".*"session":"restored".*subscription revoked/);
    await sensor.client.publishAsync('devices/c-sensor/status', 'live-status', { qos: 1 });
    await sensor.client.publishAsync('devices/c-sensor/telemetry', 'c-marker', { qos: 1 });
    await within(back.box.next((m) => m.payload === 'c-marker'), 10_000, 'the telemetry marker');
    expect(back.box.messages.filter((m) => m.topic === 'devices/c-sensor/status')).toEqual([]);
  });
});
