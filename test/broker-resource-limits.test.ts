import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IClientOptions, MqttClient } from 'mqtt';
import { startFleetEnv, wssUrlOf, type DeviceCredentials, type FleetEnv } from './harness/broker-env.js';
import { grantedQos, httpGet, inbox, metric, metricUntil, rawMqtt, within, type RawMqtt } from './harness/broker-probe.js';
import { CLI, runCli } from './harness/cli.js';
import { tempDir } from './harness/temp-dir.js';

/** SUBACK return code 0x80 "Failure" (MQTT 3.1.1 §3.9.3). */
const SUBACK_FAILURE = 128;

// One device trying to grow the broker without bound (issue 19, item 8), against the
// default limits: 100 subscriptions, 100 retained messages or 1 MiB of them, 100 QoS 2
// messages awaiting PUBREL, per identity.
describe('per-client resource limits (defaults)', () => {
  let env: FleetEnv;
  let ingest: DeviceCredentials;
  const clients: MqttClient[] = [];
  const raws: RawMqtt[] = [];

  beforeAll(async () => {
    env = await startFleetEnv();
    ingest = await env.enroll('ingest', { kind: 'service' });
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    for (const r of raws) r.socket.destroy();
    await env?.stop();
  });

  async function open(creds: DeviceCredentials, opts: IClientOptions = {}): Promise<MqttClient> {
    const c = await env.connect(creds, opts);
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  }
  const value = (name: string, labels: Record<string, string> = {}) => metric(env.healthUrl, name, labels);
  const valueBecomes = (name: string, labels: Record<string, string>, want: number) => metricUntil(env.healthUrl, name, labels, (v) => v === want);
  const refusals = (limit: string) => value('tlsfleet_broker_limit_refusals_total', { limit });
  const closed = (c: MqttClient) => new Promise<void>((resolve) => (c.disconnected || !c.connected ? resolve() : c.once('close', () => resolve())));
  /** Command topics: a service may publish there (default policy). */
  const filters = (id: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `devices/${id}/commands/${from + i}`);

  /** A raw MQTT 3.1.1 session (CONNACK awaited), for QoS 2 flows mqtt.js would complete. */
  async function raw(creds: DeviceCredentials, clean: boolean): Promise<RawMqtt> {
    const r = await rawMqtt(env.broker.port, creds, env.ca);
    raws.push(r);
    r.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId: creds.id, keepalive: 60 });
    const connack = (await r.next('connack')) as { returnCode: number };
    expect(connack.returnCode).toBe(0);
    return r;
  }
  const pubrecs = (r: RawMqtt) => r.packets.filter((p) => p.cmd === 'pubrec').length;

  it('answers the 101st filter of a session with SUBACK 0x80, lets a held filter be renewed, and frees them all when the client leaves', async () => {
    const d = await env.enroll('subs-1');
    const before = await refusals('subscriptions');
    const c = await open(d);
    const granted = await c.subscribeAsync(filters(d.id, 0, 100), { qos: 1 });
    expect(granted.map((g) => g.qos)).toEqual(Array(100).fill(1));
    await valueBecomes('tlsfleet_broker_subscriptions', {}, 100);
    expect(await grantedQos(c, `devices/${d.id}/commands/100`)).toBe(SUBACK_FAILURE);
    expect(await refusals('subscriptions')).toBe(before + 1);
    // A filter it holds already costs nothing more.
    expect(await grantedQos(c, `devices/${d.id}/commands/7`, 0)).toBe(0);
    // The refused filter delivers nothing; a held one does.
    const box = inbox(c);
    await c.publishAsync(`devices/${d.id}/commands/100`, 'refused-filter', { qos: 1 });
    await c.publishAsync(`devices/${d.id}/commands/99`, 'held-filter', { qos: 1 });
    await box.next((m) => m.payload === 'held-filter');
    expect(box.messages.map((m) => m.payload)).toEqual(['held-filter']);
    expect(await value('tlsfleet_broker_subscriptions')).toBe(100);
    await c.endAsync();
    await valueBecomes('tlsfleet_broker_subscriptions', {}, 0);
  });

  it('keeps a persistent session\'s refused filter out of its stored session: nothing is queued for it, nothing refused again on reconnect', async () => {
    const d = await env.enroll('subs-2');
    const c = await open(d, { clean: false });
    await c.subscribeAsync(filters(d.id, 0, 100), { qos: 1 });
    // One packet, one filter over the cap and one already held: Aedes stores a packet's
    // filters together once any is granted.
    const mixed = await c.subscribeAsync([`devices/${d.id}/commands/extra`, `devices/${d.id}/commands/0`], { qos: 1 }).catch((err: { packet?: { granted?: number[] } }) => err.packet?.granted?.map((qos) => ({ qos })));
    expect(mixed?.map((g) => g.qos)).toEqual([SUBACK_FAILURE, 1]);
    const refusedOnce = await refusals('subscriptions');
    await c.endAsync();
    const svc = await open(ingest, { clientId: 'ingest' });
    await svc.publishAsync(`devices/${d.id}/commands/extra`, 'queued-for-refused', { qos: 1 });
    await svc.publishAsync(`devices/${d.id}/commands/3`, 'queued-for-held', { qos: 1 });
    await svc.endAsync();
    const back = await open(d, { clean: false });
    const box = inbox(back);
    await box.next((m) => m.payload === 'queued-for-held');
    expect(box.messages.map((m) => m.payload)).toEqual(['queued-for-held']);
    await valueBecomes('tlsfleet_broker_subscriptions', {}, 100);
    expect(await refusals('subscriptions')).toBe(refusedOnce);
    await back.endAsync();
  });

  it('never stores a filter the ACL refused beside one it granted: a persistent session gets nothing queued from another device\'s topics', async () => {
    const [thief, victim] = [await env.enroll('acl-thief'), await env.enroll('acl-victim')];
    const c = await open(thief, { clean: false });
    const granted = await c.subscribeAsync([`devices/${victim.id}/#`, `devices/${thief.id}/commands/x`], { qos: 1 }).catch((err: { packet?: { granted?: number[] } }) => err.packet?.granted?.map((qos) => ({ qos })));
    expect(granted?.map((g) => g.qos)).toEqual([SUBACK_FAILURE, 1]);
    await c.endAsync();
    const v = await open(victim);
    await v.publishAsync(`devices/${victim.id}/secret`, 'victim-secret', { qos: 1 });
    await v.endAsync();
    const svc = await open(ingest, { clientId: 'ingest' });
    await svc.publishAsync(`devices/${thief.id}/commands/x`, 'own-command', { qos: 1 });
    await svc.endAsync();
    const back = await open(thief, { clean: false });
    const box = inbox(back);
    await box.next((m) => m.payload === 'own-command');
    expect(box.messages.map((m) => m.payload)).toEqual(['own-command']);
    await back.endAsync();
  });

  it('closes the connection of a device past 100 retained messages, and gives the share back as it clears them', async () => {
    const d = await env.enroll('retain-1');
    const bytesBefore = await value('tlsfleet_broker_retained_bytes');
    const before = await refusals('retained_messages');
    const c = await open(d);
    const topic = (i: number) => `devices/${d.id}/r/${i}`;
    for (let i = 0; i < 100; i++) await c.publishAsync(topic(i), `state-${i}`, { qos: 1, retain: true });
    const booked = [...Array(100).keys()].reduce((n, i) => n + `${topic(i)}state-${i}`.length, 0);
    await valueBecomes('tlsfleet_broker_retained_bytes', {}, bytesBefore + booked);
    const gone = closed(c);
    c.publish(topic(100), 'one-too-many', { qos: 1, retain: true });
    await within(gone, 10_000, 'the connection closed for the 101st retained message');
    expect(await refusals('retained_messages')).toBe(before + 1);
    // Replacing one of its own is no growth; clearing 40 gives their bytes back.
    const again = await open(d);
    await again.publishAsync(topic(0), 'state-0', { qos: 1, retain: true });
    for (let i = 60; i < 100; i++) await again.publishAsync(topic(i), '', { qos: 1, retain: true });
    const cleared = [...Array(40).keys()].reduce((n, i) => n + `${topic(60 + i)}state-${60 + i}`.length, 0);
    await valueBecomes('tlsfleet_broker_retained_bytes', {}, bytesBefore + booked - cleared);
    await again.publishAsync(topic(100), 'fits-now', { qos: 1, retain: true });
    // What the store holds is what was booked: a new subscriber gets 61 retained messages.
    const svc = await open(ingest, { clientId: 'ingest' });
    const box = inbox(svc);
    expect(await grantedQos(svc, `devices/${d.id}/r/#`)).toBe(1);
    await box.next((m) => m.payload === 'fits-now');
    await box.next(() => box.messages.length >= 61);
    expect(box.messages.every((m) => m.retain)).toBe(true);
    expect(new Set(box.messages.map((m) => m.topic)).size).toBe(61);
    await svc.endAsync();
    await again.endAsync();
  });

  it('closes the connection of a device past 1 MiB of retained messages', async () => {
    const d = await env.enroll('retain-2');
    const before = await refusals('retained_bytes');
    const c = await open(d);
    const big = 'x'.repeat(120 * 1024);
    for (let i = 0; i < 8; i++) await c.publishAsync(`devices/${d.id}/big/${i}`, big, { qos: 1, retain: true });
    const gone = closed(c);
    c.publish(`devices/${d.id}/big/8`, big, { qos: 1, retain: true });
    await within(gone, 10_000, 'the connection closed past 1 MiB retained');
    expect(await refusals('retained_bytes')).toBe(before + 1);
    const again = await open(d);
    for (let i = 0; i < 8; i++) await again.publishAsync(`devices/${d.id}/big/${i}`, '', { qos: 1, retain: true });
    await again.endAsync();
  });

  it('closes a session past 100 QoS 2 messages awaiting PUBREL, counts them across a persistent session\'s reconnects, and frees them when the session is cleaned', async () => {
    const d = await env.enroll('qos2-1');
    const before = await refusals('inflight_qos2');
    const inflightBefore = await value('tlsfleet_broker_inflight_qos2_messages');
    const topic = `devices/${d.id}/q2`;
    const unreleased = (r: RawMqtt, from: number, n: number) => {
      for (let id = from; id < from + n; id++) r.send({ cmd: 'publish', topic, payload: Buffer.from(`m${id}`), qos: 2, messageId: id, retain: false, dup: false });
    };
    const first = await raw(d, false);
    unreleased(first, 1, 60);
    await within(pollPubrecs(first, 60), 10_000, '60 PUBRECs');
    first.socket.end();
    await first.closed;
    // The persistent session keeps its 60 [MQTT-4.1.0-1]; 40 more fit, the 41st does not.
    const second = await raw(d, false);
    unreleased(second, 1000, 40);
    await within(pollPubrecs(second, 40), 10_000, '40 PUBRECs');
    await valueBecomes('tlsfleet_broker_inflight_qos2_messages', {}, inflightBefore + 100);
    unreleased(second, 2000, 1);
    await within(second.closed, 10_000, 'the connection closed for the 101st unreleased QoS 2 message');
    expect(await refusals('inflight_qos2')).toBeGreaterThan(before);
    // A clean session discards the state [MQTT-3.1.2-6]: the broker holds none of it.
    const cleaned = await raw(d, true);
    await valueBecomes('tlsfleet_broker_inflight_qos2_messages', {}, inflightBefore);
    cleaned.socket.end();
  });

  /** Resolves once `r` has received `n` PUBRECs, re-checking on each packet. */
  function pollPubrecs(r: RawMqtt, n: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (pubrecs(r) >= n) {
          r.socket.off('data', check);
          resolve();
        }
      };
      r.socket.on('data', () => setImmediate(check));
      check();
    });
  }
});

// docs/security.md: idle or slow connections are closed within 15 s of silence (the
// connect timeout, default 10 s; 2 s here), on every listener; connections are capped below
// the open-file limit (issue 19, item 12).
describe('idle connections and the connection cap', () => {
  let env: FleetEnv;
  let device: DeviceCredentials;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    env = await startFleetEnv({ brokerArgs: ['--ws-port', '0', '--connect-timeout', '2s'] });
    device = await env.enroll('idle-1');
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await env?.stop();
  });

  /**
   * Resolves when the broker closes `s`, by FIN or by RST (a close with our bytes still
   * unread resets): the socket reads, or a FIN would go unnoticed.
   */
  const closedByBroker = (s: Socket) => {
    s.on('error', () => undefined);
    s.resume();
    return new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
  };
  async function silentTcp(port: number): Promise<Socket> {
    const s = tcpConnect({ host: '127.0.0.1', port });
    sockets.push(s);
    await once(s, 'connect');
    return s;
  }
  async function silentTls(port: number): Promise<Socket> {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: env.ca, cert: device.chain, key: device.key, servername: 'localhost' });
    sockets.push(s);
    await once(s, 'secureConnect');
    return s;
  }

  it('closes silent connections on the mqtts, wss and health ports within the connect timeout, and counts them', async () => {
    const mqttsPort = env.broker.port;
    const wssPort = Number(new URL(wssUrlOf(env.broker)).port);
    const healthPort = Number(new URL(env.healthUrl).port);
    const before = {
      tls: await metric(env.healthUrl, 'tlsfleet_broker_handshake_failures_total', { reason: 'timeout' }),
      connect: await metric(env.healthUrl, 'tlsfleet_broker_connect_timeouts_total'),
      ws: await metric(env.healthUrl, 'tlsfleet_broker_websocket_refusals_total', { reason: 'timeout' }),
      health: await metric(env.healthUrl, 'tlsfleet_broker_health_refusals_total', { reason: 'timeout' }),
    };
    const slowRequest = await silentTcp(healthPort);
    slowRequest.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const idle = [await silentTcp(mqttsPort), await silentTls(mqttsPort), await silentTcp(wssPort), await silentTls(wssPort), await silentTcp(healthPort), slowRequest];
    // Node's defaults held the wss one ~30 s and the health ones 60–90 s.
    await within(Promise.all(idle.map(closedByBroker)), 8_000, 'every silent connection closed by the broker');
    expect(await metric(env.healthUrl, 'tlsfleet_broker_handshake_failures_total', { reason: 'timeout' })).toBe(before.tls + 2);
    expect(await metric(env.healthUrl, 'tlsfleet_broker_connect_timeouts_total')).toBe(before.connect + 1);
    expect(await metric(env.healthUrl, 'tlsfleet_broker_websocket_refusals_total', { reason: 'timeout' })).toBe(before.ws + 1);
    expect(await metric(env.healthUrl, 'tlsfleet_broker_health_refusals_total', { reason: 'timeout' })).toBe(before.health + 2);
  }, 30_000);

  it('closes a TLS handshake that trickles in (a byte at a time) at the connect timeout, on mqtts and wss', async () => {
    const before = await metric(env.healthUrl, 'tlsfleet_broker_handshake_failures_total', { reason: 'timeout' });
    const ports = [env.broker.port, Number(new URL(wssUrlOf(env.broker)).port)];
    const slow = await Promise.all(ports.map((port) => silentTcp(port)));
    // A TLS record header announcing a 16 KiB handshake record, then a byte every 500 ms, never
    // a whole ClientHello. Node's handshakeTimeout holds: bytes before the handshake completes
    // do not refresh the TLS socket's timer, so it is a deadline, not an inactivity timer.
    const hello = Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, ...Array(64).fill(0x01)]);
    let sent = 0;
    const drip = setInterval(() => {
      for (const s of slow) if (!s.destroyed) s.write(hello.subarray(sent, sent + 1));
      sent++;
    }, 500);
    try {
      await within(Promise.all(slow.map(closedByBroker)), 8_000, 'both trickling handshakes closed');
    } finally {
      clearInterval(drip);
    }
    expect(await metric(env.healthUrl, 'tlsfleet_broker_handshake_failures_total', { reason: 'timeout' })).toBe(before + 2);
  }, 30_000);

  it('raises the soft open-file limit at start and caps connections below it, refusing (and counting) the rest while the health port answers', async () => {
    const dir = tempDir();
    expect((await runCli(['init', '--data-dir', dir.path])).code).toBe(0);
    const child = spawn('prlimit', ['--nofile=200:300', '--', process.execPath, CLI, 'broker', '--data-dir', dir.path, '--host', '127.0.0.1', '--port', '0', '--health-port', '0', '--connect-timeout', '5s'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    try {
      await within(new Promise<void>((resolve) => child.stdout.on('data', () => /"msg":"broker listening"/.test(out) && resolve())), 20_000, `the broker ready: ${out}`);
      const line = JSON.parse(out.split('\n').find((l) => l.includes('"msg":"broker listening"')) ?? '{}') as { maxConnections?: number; fdLimit?: { soft: number; hard: number } };
      // 300 less the reserve (10 %, at least 64 descriptors).
      expect(line.fdLimit).toEqual({ soft: 300, hard: 300 });
      expect(line.maxConnections).toBe(236);
      const port = Number(/mqtts:\/\/[^:]+:(\d+)/.exec(out)?.[1]);
      const health = /"healthUrl":"(http:\/\/[^"]+)"/.exec(out)?.[1] ?? '';
      const conns = await Promise.all(Array.from({ length: 240 }, () => silentTcp(port)));
      const refused = await metricUntil(health, 'tlsfleet_broker_connection_limit_refusals_total', { listener: 'mqtts' }, (v) => v >= 4);
      expect(refused).toBe(4);
      expect((await httpGet(`${health}/healthz`)).status).toBe(200);
      for (const c of conns) c.destroy();
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
      dir.cleanup();
    }
  }, 60_000);
});
