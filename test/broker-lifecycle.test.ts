import { once } from 'node:events';
import { X509Certificate, randomBytes } from 'node:crypto';
import { readFileSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IClientOptions, MqttClient } from 'mqtt';
import { healthUrlOf, startBrokerProcess, startFleetEnv, type DeviceCredentials, type FleetEnv } from './harness/broker-env.js';
import {
  closedAt,
  countMatches,
  grantedQos,
  httpGet,
  inbox,
  metric,
  metricUntil,
  outputMatches,
  readyzStatuses,
  rssKiB,
  sample,
  servedSerial,
  tryConnect,
  within,
  type Attempt,
} from './harness/broker-probe.js';
import { runCli, type Service } from './harness/cli.js';
import { postJson } from './harness/https-client.js';

/** CONNACK return code 5 "Connection refused, not authorized" (MQTT 3.1.1 §3.2.2.3). */
const NOT_AUTHORIZED = 5;
/** SUBACK return code 0x80 "Failure". */
const SUBACK_FAILURE = 128;
/** docs/concepts.md: a revoked device is disconnected within 10 s. */
const REVOCATION_BOUND_MS = 10_000;

/** A policy file: the default policy (docs/reference/mqtt.md) rules plus `extra` device rules. */
function policy(extraDeviceTopics: string[]): string {
  return `${JSON.stringify(
    {
      version: 1,
      rules: [
        { name: 'own subtree', identity: 'device', allow: ['publish', 'subscribe'], topics: ['devices/{id}/#'] },
        { name: 'fleet extras', identity: 'device', allow: ['publish', 'subscribe'], topics: extraDeviceTopics },
        { identity: 'service', allow: ['subscribe'], topics: ['devices/+/#'] },
        { identity: 'service', allow: ['publish'], topics: ['devices/+/commands/#'] },
      ],
    },
    null,
    2,
  )}\n`;
}

/**
 * Replaces `file` atomically (write beside, rename over) with an mtime of exactly `mtimeSec`
 * seconds, so a test controls what a stat-polling watcher can tell apart.
 */
function replaceFile(file: string, text: string, mtimeSec: number, mode = 0o644): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, text, { mode });
  utimesSync(tmp, mtimeSec, mtimeSec);
  renameSync(tmp, file);
}

describe('broker lifecycle: revocation, expiry, limits, reload and operations', () => {
  let env: FleetEnv;
  let ingest: DeviceCredentials;
  const clients: MqttClient[] = [];
  const attempts: Attempt[] = [];
  // A 5-second certificate connected at start-up, so its expiry runs while the other tests do.
  let expiring: { creds: DeviceCredentials; notAfterMs: number; closed: Promise<number> };

  beforeAll(async () => {
    env = await startFleetEnv({ brokerArgs: ['--connect-timeout', '2s', '--max-packet-size', '65536', '--max-queued-messages', '5'] });
    const creds = await env.enroll('expiring-1', { certTtl: '5s' });
    const client = await open(creds);
    expiring = { creds, notAfterMs: Date.parse(new X509Certificate(creds.chain).validTo), closed: closedAt(client) };
    ingest = await env.enroll('ingest', { kind: 'service' });
  });
  afterAll(async () => {
    for (const c of [...clients, ...attempts.map((a) => a.client)]) c.end(true);
    await env?.stop();
  });

  async function open(creds: DeviceCredentials, opts: IClientOptions = {}, url?: string): Promise<MqttClient> {
    const c = url ? (await tryConnect(url, { clientId: creds.id, cert: creds.chain, key: creds.key, ca: env.ca, ...opts })).client : await env.connect(creds, opts);
    c.on('error', () => undefined);
    clients.push(c);
    if (!c.connected) throw new Error(`${creds.id} did not connect to ${url}`);
    return c;
  }
  async function attempt(creds: DeviceCredentials, opts: IClientOptions = {}): Promise<Attempt> {
    const a = await tryConnect(env.brokerUrl, { clientId: creds.id, cert: creds.chain, key: creds.key, ca: env.ca, ...opts });
    attempts.push(a);
    return a;
  }
  const counter = (name: string, labels: Record<string, string> = {}) => metric(env.healthUrl, name, labels);
  const counterReaches = (name: string, labels: Record<string, string>, atLeast: number, url = env.healthUrl) => metricUntil(url, name, labels, (v) => v >= atLeast);

  /** A publish round trip on the client's own topic proves the session is alive and served. */
  async function roundTrip(client: MqttClient, id: string): Promise<void> {
    const box = inbox(client);
    expect(await grantedQos(client, `devices/${id}/echo`)).toBe(1);
    const payload = `echo-${Math.random()}`;
    await client.publishAsync(`devices/${id}/echo`, payload, { qos: 1 });
    await box.next((m) => m.payload === payload);
  }

  describe('revocation', () => {
    it('closes a live session within 10 s of a revocation through the API, and the device cannot reconnect', async () => {
      const d = await env.enroll('rev-api');
      const live = await open(d);
      const closed = closedAt(live);
      const before = await counter('tlsfleet_broker_revocation_disconnects_total', { reason: 'revoked' });
      const t0 = Date.now();
      const res = await postJson(`${env.url}/v1/devices/rev-api/revoke`, {}, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
      expect(res.status, res.text()).toBe(200);
      expect(res.json().revoked).toHaveLength(1);
      const t1 = await within(closed, REVOCATION_BOUND_MS + 1000, 'revoked session close');
      expect(t1 - t0).toBeLessThan(REVOCATION_BOUND_MS);
      await counterReaches('tlsfleet_broker_revocation_disconnects_total', { reason: 'revoked' }, before + 1);
      const again = await attempt(d);
      expect(again.outcome).toBe('refused');
      expect(again.code).toBe(NOT_AUTHORIZED);
    });

    it('closes a live session within 10 s of `tlsfleet revoke --data-dir`, and the device cannot reconnect', async () => {
      const d = await env.enroll('rev-cli');
      const live = await open(d);
      const closed = closedAt(live);
      const t0 = Date.now();
      const r = await runCli(['revoke', '--data-dir', env.dataDir, '--device', 'rev-cli']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toMatch(/^[0-9a-f]+$/i);
      const t1 = await within(closed, REVOCATION_BOUND_MS + 1000, 'revoked session close');
      expect(t1 - t0).toBeLessThan(REVOCATION_BOUND_MS);
      const again = await attempt(d);
      expect(again.outcome).toBe('refused');
      expect(again.code).toBe(NOT_AUTHORIZED);
    });

    it('does not publish the will of a device whose session it closes for revocation', async () => {
      const service = await open(ingest);
      const box = inbox(service);
      expect(await grantedQos(service, 'devices/+/#')).toBe(1);
      const d = await env.enroll('rev-will');
      const live = await open(d, { will: { topic: 'devices/rev-will/status', payload: Buffer.from('revoked-will'), qos: 1, retain: true } });
      const closed = closedAt(live);
      const r = await runCli(['revoke', '--data-dir', env.dataDir, '--device', 'rev-will']);
      expect(r.code, r.stderr).toBe(0);
      await within(closed, REVOCATION_BOUND_MS, 'revoked session close');
      // A later message from another device proves the service was listening past the close.
      const witness = await open(await env.enroll('rev-will-witness'));
      await witness.publishAsync('devices/rev-will-witness/t', 'after', { qos: 1 });
      await box.next((m) => m.payload === 'after');
      expect(box.messages.filter((m) => m.payload === 'revoked-will')).toEqual([]);
    });

    it('leaves the sessions of other devices open when one device is revoked', async () => {
      const keep = await env.enroll('rev-bystander');
      const gone = await env.enroll('rev-target');
      const bystander = await open(keep);
      const bystanderClosed = closedAt(bystander);
      const target = await open(gone);
      const targetClosed = closedAt(target);
      const r = await runCli(['revoke', '--data-dir', env.dataDir, '--device', 'rev-target']);
      expect(r.code, r.stderr).toBe(0);
      await within(targetClosed, REVOCATION_BOUND_MS, 'revoked session close');
      await roundTrip(bystander, 'rev-bystander');
      expect(await Promise.race([bystanderClosed, Promise.resolve('open')])).toBe('open');
    });
  });

  describe('limits', () => {
    it('cuts an oversize PUBLISH (1 MiB against --max-packet-size 65536): the connection closes, packet_too_large is counted, broker RSS stays bounded', async () => {
      const pid = env.broker.child.pid as number;
      const rssBefore = rssKiB(pid);
      const before = await counter('tlsfleet_broker_frame_violations_total', { violation: 'packet_too_large' });
      const senders = await Promise.all([1, 2, 3, 4].map((i) => env.enroll(`big-${i}`).then((d) => open(d))));
      const closed = senders.map((c) => closedAt(c));
      senders.forEach((c, i) => c.publish(`devices/big-${i + 1}/blob`, randomBytes(1024 * 1024), { qos: 1 }));
      await within(Promise.all(closed), 10_000, 'oversize publishers closed');
      await counterReaches('tlsfleet_broker_frame_violations_total', { violation: 'packet_too_large' }, before + 4);
      const growthKiB = rssKiB(pid) - rssBefore;
      expect(growthKiB).toBeLessThan(32 * 1024);
      // The broker still serves.
      const ok = await open(await env.enroll('big-after'));
      await roundTrip(ok, 'big-after');
    });

    it('keeps at most --max-queued-messages QoS 1 messages for an offline persistent session, drops the rest and counts them', async () => {
      const creds = await env.enroll('queue-bound');
      const first = await open(creds, { clean: false });
      expect(await grantedQos(first, 'devices/queue-bound/commands/#')).toBe(1);
      const closed = closedAt(first);
      first.end();
      await closed;
      const service = await open(ingest);
      const drops = await counter('tlsfleet_broker_queue_drops_total');
      for (let i = 0; i < 8; i++) await service.publishAsync(`devices/queue-bound/commands/${i}`, `cmd-${i}`, { qos: 1 });
      await counterReaches('tlsfleet_broker_queue_drops_total', {}, drops + 3);
      const back = await open(creds, { clean: false });
      const box = inbox(back);
      // The marker, published after the reconnect, arrives too; MQTT orders messages per
      // topic only [MQTT-4.6.0-6], so it may overtake the queue, which keeps its own order.
      await service.publishAsync('devices/queue-bound/commands/marker', 'marker', { qos: 1 });
      await box.next((m) => m.payload === 'marker');
      await box.next((m) => m.payload === 'cmd-4');
      const queued = box.messages.map((m) => m.payload).filter((p) => p !== 'marker');
      expect(queued).toEqual(['cmd-0', 'cmd-1', 'cmd-2', 'cmd-3', 'cmd-4']);
      expect(box.messages).toHaveLength(6);
    });

    it('accepts a PUBLISH just under --max-packet-size', async () => {
      const c = await open(await env.enroll('near-limit'));
      const box = inbox(c);
      expect(await grantedQos(c, 'devices/near-limit/blob')).toBe(1);
      await c.publishAsync('devices/near-limit/blob', Buffer.alloc(60 * 1024, 7), { qos: 1 });
      expect((await box.next((m) => m.topic === 'devices/near-limit/blob')).payload.length).toBe(60 * 1024);
    });

    it.each([
      ['a NUL character', 'devices/topic-1/a\u0000b'],
      ['the wildcard #', 'devices/topic-2/#'],
      ['the wildcard +', 'devices/topic-3/+/x'],
    ])('closes the connection on a PUBLISH whose topic holds %s, and delivers nothing', async (_what, topic) => {
      const id = topic.split('/')[1] as string;
      const svc = await open(ingest, { clientId: 'ingest' });
      const svcBox = inbox(svc);
      expect(await grantedQos(svc, 'devices/+/#')).toBe(1);
      const c = await open(await env.enroll(id));
      const closed = closedAt(c);
      c.publish(topic, 'bad-topic', { qos: 1 });
      await within(closed, 5000, 'connection close after a bad topic');
      // A later good publish arrives; the bad one never did.
      const after = await open(await env.enroll(`${id}-next`));
      await after.publishAsync(`devices/${id}-next/ok`, 'good', { qos: 1 });
      await svcBox.next((m) => m.payload === 'good');
      expect(svcBox.messages.map((m) => m.payload)).not.toContain('bad-topic');
    });

    it('closes the connection on a QoS 1 PUBLISH too short for its packet identifier, and delivers nothing', async () => {
      const svc = await open(ingest, { clientId: 'ingest' });
      const svcBox = inbox(svc);
      expect(await grantedQos(svc, 'devices/+/#')).toBe(1);
      const c = await open(await env.enroll('short-id'));
      const closed = closedAt(c);
      // MQTT 3.1.1 §3.3: type 3 with QoS 1, then the topic and nothing after it. A parser that
      // read the identifier from the next packet's bytes would go on to misread that packet.
      const topic = Buffer.from('devices/short-id/x');
      const truncated = Buffer.concat([Buffer.from([0x32, 2 + topic.length, 0, topic.length]), topic]);
      const payload = Buffer.from('after-short-id');
      const following = Buffer.concat([Buffer.from([0x30, 2 + topic.length + payload.length, 0, topic.length]), topic, payload]);
      c.stream.write(Buffer.concat([truncated, following]));
      await within(closed, 5000, 'connection close after a PUBLISH with no packet identifier');
      const after = await open(await env.enroll('short-id-next'));
      await after.publishAsync('devices/short-id-next/ok', 'good', { qos: 1 });
      await svcBox.next((m) => m.payload === 'good');
      expect(svcBox.messages.filter((m) => m.topic.startsWith('devices/short-id/'))).toEqual([]);
    });

    it('keeps serving a real device while 200 junk and silent connections are open, and closes the silent ones after --connect-timeout 2s', async () => {
      const timeoutsBefore = await counter('tlsfleet_broker_handshake_failures_total', { reason: 'timeout' });
      const silentCreds = await env.enroll('silent-tls');
      const realCreds = await env.enroll('real-amid-junk');
      const port = env.broker.port;
      // Each socket is watched from the moment it exists: on a slow host the broker may close
      // the garbage ones before the last silent one is open.
      const closedFlags: boolean[] = [];
      const closedTimes: Promise<number>[] = [];
      const watch = <S extends Socket>(s: S): S => {
        const i = closedFlags.push(false) - 1;
        s.on('error', () => undefined);
        // Read, or a FIN from the broker goes unnoticed: a paused socket whose bytes the server
        // consumed entirely (OpenSSL does for some garbage) gets a FIN, not an RST, and only
        // emits 'end' and 'close' once its readable side is consumed.
        s.resume();
        // 'close' only: events.once would reject on a reset, which is one way the broker closes.
        closedTimes.push(
          new Promise<number>((resolve) =>
            s.once('close', () => {
              closedFlags[i] = true;
              resolve(Date.now());
            }),
          ),
        );
        return s;
      };
      const tcp = (): Promise<Socket> =>
        new Promise((resolve, reject) => {
          const s = netConnect({ host: '127.0.0.1', port });
          s.once('connect', () => resolve(watch(s)));
          s.once('error', reject);
        });
      // 60 send garbage, 70 finish TLS but never send CONNECT, 70 send nothing at all.
      const garbage = await Promise.all(Array.from({ length: 60 }, () => tcp()));
      for (const s of garbage) s.write(randomBytes(512));
      const tlsStarted = Date.now();
      const silentTls = await Promise.all(
        Array.from({ length: 70 }, async () => {
          const s = tlsConnect({ host: '127.0.0.1', port, ca: env.ca, cert: silentCreds.chain, key: silentCreds.key, servername: 'localhost' });
          await once(s, 'secureConnect');
          return watch(s);
        }),
      );
      const tcpStarted = Date.now();
      const silentTcp = await Promise.all(Array.from({ length: 70 }, () => tcp()));
      expect(closedTimes).toHaveLength(200);
      const stillOpenBy = () =>
        `garbage ${closedFlags.slice(0, 60).filter((c) => !c).length}, silent TLS ${closedFlags.slice(60, 130).filter((c) => !c).length}, silent TCP ${closedFlags.slice(130).filter((c) => !c).length} still open`;

      // A real device connects, subscribes and gets its own publish while they are all open.
      const real = await open(realCreds);
      await roundTrip(real, 'real-amid-junk');
      // All 140 silent ones are still open now, unless this machine was slow enough for their 2 s to pass.
      const stillOpen = [...silentTls, ...silentTcp].filter((s) => !s.destroyed).length;
      if (Date.now() - tlsStarted < 1900) expect(stillOpen).toBe(140);

      const times = await within(Promise.all(closedTimes), 20_000, 'broker closing the junk and silent connections').catch((err: Error) => {
        throw new Error(`${err.message}: ${stillOpenBy()}`);
      });
      // The silent ones went away when the broker's 2 s deadlines passed, not sooner.
      expect(Math.min(...times.slice(60, 130)) - tlsStarted).toBeGreaterThanOrEqual(1900);
      expect(Math.min(...times.slice(130)) - tcpStarted).toBeGreaterThanOrEqual(1900);
      await counterReaches('tlsfleet_broker_handshake_failures_total', { reason: 'timeout' }, timeoutsBefore + 70);
      // The real device was never disturbed.
      await roundTrip(real, 'real-amid-junk');
    });
  });

  describe('sessions', () => {
    it('lets a second connection with the same identity take the session over: the first gets close, the takeover is counted', async () => {
      const d = await env.enroll('takeover-1');
      const first = await open(d);
      const firstClosed = closedAt(first);
      const before = await counter('tlsfleet_broker_session_takeovers_total');
      const second = await open(d);
      await within(firstClosed, 5000, 'first connection closed by the takeover');
      await counterReaches('tlsfleet_broker_session_takeovers_total', {}, before + 1);
      await roundTrip(second, 'takeover-1');
      expect(second.connected).toBe(true);
    });
  });

  describe('expiry', () => {
    it('closes the session of a 5-second certificate at its notAfter, and that certificate cannot reconnect', async () => {
      const issued = new X509Certificate(expiring.creds.chain);
      // A 5-second certificate indeed (notBefore is backdated for clock skew).
      expect(expiring.notAfterMs - Date.parse(issued.validFrom)).toBeLessThanOrEqual(5 * 60_000 + 6_000);
      const closedAtMs = await within(expiring.closed, Math.max(0, expiring.notAfterMs - Date.now()) + 3000, 'expired session close');
      expect(closedAtMs).toBeGreaterThanOrEqual(expiring.notAfterMs - 250);
      expect(closedAtMs - expiring.notAfterMs).toBeLessThan(2000);
      expect(await counter('tlsfleet_broker_revocation_disconnects_total', { reason: 'expired' })).toBeGreaterThanOrEqual(1);
      const expiredBefore = await counter('tlsfleet_broker_handshake_failures_total', { reason: 'expired' });
      const again = await attempt(expiring.creds);
      expect(again.outcome).not.toBe('connected');
      // The metrics' help text names `expired` as the reason for an expired client certificate.
      await counterReaches('tlsfleet_broker_handshake_failures_total', { reason: 'expired' }, expiredBefore + 1);
    });
  });

  describe('reload', () => {
    // A broker of its own with --acl FILE, on the same data dir.
    let aclBroker: Service;
    let aclHealth: string;
    let aclFile: string;
    const base = Math.floor(Date.now() / 1000) - 1000;
    const v2 = policy(['fleet/{id}/events', 'fleet/{id}/alerts']);
    const v3 = policy(['fleet/{id}/events', 'fleet/{id}/alarms']);
    const reloadedLine = /ACL policy reloaded/;
    const rejectedLine = /ACL policy rejected/;

    beforeAll(async () => {
      aclFile = join(env.dir, 'acl.json');
      replaceFile(aclFile, policy(['fleet/{id}/events']), base);
      aclBroker = await startBrokerProcess(env.dataDir, ['--acl', aclFile]);
      aclHealth = healthUrlOf(aclBroker);
    });
    afterAll(async () => {
      await aclBroker?.stop();
    });

    it('applies the policy file given with --acl: a device may also publish and subscribe to fleet/{id}/events', async () => {
      const c = await open(await env.enroll('acl-1'), {}, aclBroker.url);
      const box = inbox(c);
      expect(await grantedQos(c, 'fleet/acl-1/events')).toBe(1);
      expect(await grantedQos(c, 'fleet/acl-2/events')).toBe(SUBACK_FAILURE);
      expect(await grantedQos(c, 'fleet/acl-1/alerts')).toBe(SUBACK_FAILURE);
      await c.publishAsync('fleet/acl-1/events', 'custom-rule', { qos: 1 });
      await box.next((m) => m.payload === 'custom-rule');
    });

    it('applies a rewritten policy to new checks without a restart, on a connection opened before', async () => {
      const c = await open(await env.enroll('acl-2'), {}, aclBroker.url);
      expect(await grantedQos(c, 'fleet/acl-2/alerts')).toBe(SUBACK_FAILURE);
      const okBefore = await metric(aclHealth, 'tlsfleet_broker_acl_reloads_total', { result: 'ok' });
      replaceFile(aclFile, v2, base + 1);
      // Retry the subscription (each a real SUBSCRIBE) until granted, at most 5 s.
      const deadline = Date.now() + 5000;
      let granted = SUBACK_FAILURE;
      while (granted !== 1 && Date.now() < deadline) granted = await grantedQos(c, 'fleet/acl-2/alerts');
      expect(granted).toBe(1);
      expect(await metric(aclHealth, 'tlsfleet_broker_acl_reloads_total', { result: 'ok' })).toBe(okBefore + 1);
      expect(countMatches(aclBroker.output(), reloadedLine)).toBeGreaterThanOrEqual(1);
      expect(aclBroker.child.exitCode).toBeNull();
    });

    it('keeps the last good policy when the file turns into invalid JSON, and logs why', async () => {
      const rejectedBefore = countMatches(aclBroker.output(), rejectedLine);
      replaceFile(aclFile, '{"version": 1, "rules": [', base + 2);
      await within(outputMatches(aclBroker, rejectedLine, rejectedBefore), 5000, 'the broker rejecting the bad policy');
      const line = aclBroker.output().split('\n').find((l) => rejectedLine.test(l)) ?? '';
      expect(line).toContain(aclFile);
      expect(line).toMatch(/JSON/i);
      expect(await metric(aclHealth, 'tlsfleet_broker_acl_reloads_total', { result: 'rejected' })).toBeGreaterThanOrEqual(1);
      // The last good policy (v2) still holds, for a new connection too.
      const c = await open(await env.enroll('acl-3'), {}, aclBroker.url);
      expect(await grantedQos(c, 'fleet/acl-3/alerts')).toBe(1);
      expect(await grantedQos(c, 'fleet/acl-3/events')).toBe(1);
      expect(await grantedQos(c, 'devices/acl-3/#')).toBe(1);
      expect(await grantedQos(c, '#')).toBe(SUBACK_FAILURE);
    });

    it('reloads the policy on SIGHUP even when the file looks unchanged to the watcher', async () => {
      // Back to a valid v2, seen by the watcher.
      const reloadsBefore = countMatches(aclBroker.output(), reloadedLine);
      replaceFile(aclFile, v2, base + 3);
      await within(outputMatches(aclBroker, reloadedLine, reloadsBefore), 5000, 'the watcher reloading v2');
      // v3 has v2's size and mtime: the stat watcher cannot tell them apart; only SIGHUP can.
      expect(v3.length).toBe(v2.length);
      replaceFile(aclFile, v3, base + 3);
      const c = await open(await env.enroll('acl-4'), {}, aclBroker.url);
      expect(await grantedQos(c, 'fleet/acl-4/alarms')).toBe(SUBACK_FAILURE);
      const afterV2 = countMatches(aclBroker.output(), reloadedLine);
      aclBroker.child.kill('SIGHUP');
      await within(outputMatches(aclBroker, reloadedLine, afterV2), 5000, 'the SIGHUP reload');
      expect(await grantedQos(c, 'fleet/acl-4/alarms')).toBe(1);
      expect(await grantedQos(c, 'fleet/acl-4/alerts')).toBe(SUBACK_FAILURE);
      expect(aclBroker.child.exitCode).toBeNull();
    });
  });

  describe('operations', () => {
    it('answers /healthz and /readyz with 200, and /metrics exposes connected clients, messages in and out, and bytes', async () => {
      expect((await httpGet(`${env.healthUrl}/healthz`)).status).toBe(200);
      expect((await httpGet(`${env.healthUrl}/readyz`)).status).toBe(200);
      const c = await open(await env.enroll('ops-metrics'));
      const before = (await httpGet(`${env.healthUrl}/metrics`)).body;
      await roundTrip(c, 'ops-metrics');
      const res = await httpGet(`${env.healthUrl}/metrics`);
      expect(res.status).toBe(200);
      const after = res.body;
      expect(sample(after, 'tlsfleet_broker_connected_clients')).toBeGreaterThanOrEqual(1);
      for (const direction of ['in', 'out']) {
        expect(sample(after, 'tlsfleet_broker_messages_total', { direction }), `messages ${direction}`).toBeGreaterThan(sample(before, 'tlsfleet_broker_messages_total', { direction }));
        expect(sample(after, 'tlsfleet_broker_bytes_total', { direction }), `bytes ${direction}`).toBeGreaterThan(sample(before, 'tlsfleet_broker_bytes_total', { direction }));
      }
    });

    it('drains on SIGTERM: /readyz answers 503 while draining, clients see the close, and the process exits 0 within 5 s', async () => {
      const broker = await startBrokerProcess(env.dataDir);
      const health = healthUrlOf(broker);
      try {
        expect((await httpGet(`${health}/readyz`)).status).toBe(200);
        const a = await open(await env.enroll('drain-1'), {}, broker.url);
        const b = await open(await env.enroll('drain-2'), {}, broker.url);
        const closes = Promise.all([closedAt(a), closedAt(b)]);
        const exited = once(broker.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
        // Ask /readyz back to back from the signal on, until the health port is gone.
        let gone = false;
        void exited.then(() => (gone = true));
        const t0 = Date.now();
        broker.child.kill('SIGTERM');
        const probing = readyzStatuses(health, () => gone);
        const [code] = await within(exited, 5000, 'broker exit after SIGTERM');
        expect(Date.now() - t0).toBeLessThan(5000);
        expect(code).toBe(0);
        await within(closes, 1000, 'clients seeing the close');
        const statuses = await probing;
        expect(statuses, JSON.stringify(statuses)).toContain(503);
        expect(statuses.indexOf(503) === -1 || !statuses.slice(statuses.indexOf(503)).includes(200)).toBe(true);
      } finally {
        await broker.stop();
      }
    });
  });

  // Last: it replaces the data dir's broker.pem, which every broker of the suite watches.
  describe('server certificate reload', () => {
    it('serves a re-issued broker.pem/broker.key to new handshakes while an established session stays connected', async () => {
      const dev = await env.enroll('tls-reload');
      const established = await open(dev);
      const establishedClosed = closedAt(established);
      const oldSerial = new X509Certificate(readFileSync(join(env.dataDir, 'broker.pem'))).serialNumber;
      const newSerial = new X509Certificate(readFileSync(join(env.dataDir, 'provisioning.pem'))).serialNumber;
      expect(newSerial).not.toBe(oldSerial);
      expect(await servedSerial(env.broker.port, env.ca, dev)).toBe(oldSerial);

      const reloadsBefore = countMatches(env.broker.output(), /TLS material reloaded/);
      const stamp = Math.floor(Date.now() / 1000) + 5;
      replaceFile(join(env.dataDir, 'broker.key'), readFileSync(join(env.dataDir, 'provisioning.key'), 'utf8'), stamp, 0o600);
      replaceFile(join(env.dataDir, 'broker.pem'), readFileSync(join(env.dataDir, 'provisioning.pem'), 'utf8'), stamp);

      await within(outputMatches(env.broker, /TLS material reloaded/, reloadsBefore), 5000, 'the broker reloading its TLS material');
      expect(await servedSerial(env.broker.port, env.ca, dev)).toBe(newSerial);
      // New MQTT sessions verify against the same trust bundle.
      const fresh = await open(await env.enroll('tls-reload-new'));
      await roundTrip(fresh, 'tls-reload-new');
      await roundTrip(established, 'tls-reload');
      expect(await Promise.race([establishedClosed, Promise.resolve('open')])).toBe('open');
    });
  });
});
