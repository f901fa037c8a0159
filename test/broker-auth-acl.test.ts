import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IClientOptions, MqttClient } from 'mqtt';
import { enrollAt, startFleetEnv, type DeviceCredentials, type FleetEnv } from './harness/broker-env.js';
import {
  closedAt,
  EMPTY_ID_UNCLEAN_CONNECT,
  grantedQos,
  inbox,
  metric,
  metricUntil,
  mosquittoArgs,
  mosquittoPub,
  mosquittoSub,
  rawMqtt,
  tryConnect,
  within,
  type Attempt,
} from './harness/broker-probe.js';
import { startProvisioningEnv } from './harness/fleet-env.js';
import { postJson } from './harness/https-client.js';

/** SUBACK return code 0x80 "Failure", as mqtt.js reports it in `granted[].qos`. */
const SUBACK_FAILURE = 128;
/** CONNACK return code 5 "Connection refused, not authorized" (MQTT 3.1.1 §3.2.2.3). */
const NOT_AUTHORIZED = 5;

describe('broker authentication and topic ACL (default policy)', () => {
  let env: FleetEnv;
  /** Service identity `ingest`: subscribes devices/+/#, publishes devices/+/commands/#. */
  let ingest: DeviceCredentials;
  const clients: MqttClient[] = [];
  const attempts: Attempt[] = [];

  beforeAll(async () => {
    env = await startFleetEnv();
    ingest = await env.enroll('ingest', { kind: 'service' });
  });
  afterAll(async () => {
    for (const c of [...clients, ...attempts.map((a) => a.client)]) c.end(true);
    await env?.stop();
  });

  /** A connected mqtt.js client, ended after the suite. */
  async function open(creds: DeviceCredentials, opts: IClientOptions = {}): Promise<MqttClient> {
    const c = await env.connect(creds, opts);
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  }
  async function attempt(opts: IClientOptions): Promise<Attempt> {
    const a = await tryConnect(env.brokerUrl, { ca: env.ca, ...opts });
    attempts.push(a);
    return a;
  }
  const asIdentity = (creds: DeviceCredentials, opts: IClientOptions = {}): IClientOptions => ({ clientId: creds.id, cert: creds.chain, key: creds.key, ...opts });
  const counter = (name: string, labels: Record<string, string> = {}) => metric(env.healthUrl, name, labels);
  const counterReaches = (name: string, labels: Record<string, string>, atLeast: number) => metricUntil(env.healthUrl, name, labels, (v) => v >= atLeast);

  /** A service subscribed to devices/+/#, recording what it receives. */
  async function serviceListener() {
    const svc = await open(ingest, { clientId: 'ingest' });
    expect(await grantedQos(svc, 'devices/+/#')).toBe(1);
    return { svc, box: inbox(svc) };
  }

  /** Proves `device` is still connected and served: a command from the service reaches it. */
  async function stillServed(device: MqttClient, id: string, commander: MqttClient): Promise<void> {
    const box = inbox(device);
    expect(await grantedQos(device, `devices/${id}/commands/#`)).toBe(1);
    const payload = `ping-${Math.random()}`;
    await commander.publishAsync(`devices/${id}/commands/ping`, payload, { qos: 1 });
    expect((await box.next((m) => m.payload === payload)).topic).toBe(`devices/${id}/commands/ping`);
  }

  describe('auth', () => {
    it('refuses a client without a certificate and counts handshake failure no_cert', async () => {
      const before = await counter('tlsfleet_broker_handshake_failures_total', { reason: 'no_cert' });
      const a = await attempt({ clientId: 'nocert-1' });
      expect(a.outcome).not.toBe('connected');
      await counterReaches('tlsfleet_broker_handshake_failures_total', { reason: 'no_cert' }, before + 1);
    });

    it('refuses a username and password without a certificate: there is no password path around mTLS', async () => {
      const d = await env.enroll('userpass-1');
      const before = await counter('tlsfleet_broker_handshake_failures_total', { reason: 'no_cert' });
      const a = await attempt({ clientId: d.id, username: d.id, password: 'correct horse battery staple' });
      expect(a.outcome).not.toBe('connected');
      await counterReaches('tlsfleet_broker_handshake_failures_total', { reason: 'no_cert' }, before + 1);
      // Credentials beside another device's certificate do not lend that identity either.
      const other = await env.enroll('userpass-2');
      const spoof = await attempt(asIdentity(other, { clientId: d.id, username: d.id, password: 'x' }));
      expect(spoof.outcome).toBe('refused');
      expect(spoof.code).toBe(NOT_AUTHORIZED);
    });

    it('refuses a look-alike certificate for the same identity from another CA of the same trust domain, and the real holder stays connected', async () => {
      const real = await env.enroll('lookalike-1');
      const holder = await open(real);
      const commander = await open(ingest, { clientId: 'ingest' });
      const holderClosed = closedAt(holder);
      const otherCa = await startProvisioningEnv();
      try {
        const fake = await enrollAt(otherCa, 'lookalike-1');
        // Same identity, same trust domain, different trust anchor.
        expect(new X509Certificate(fake.chain).subjectAltName).toBe(new X509Certificate(real.chain).subjectAltName);
        expect(new X509Certificate(fake.chain).subjectAltName).toBe('URI:spiffe://tlsfleet.local/device/lookalike-1');
        const before = await counter('tlsfleet_broker_handshake_failures_total', { reason: 'unknown_ca' });
        const a = await attempt(asIdentity(fake));
        expect(a.outcome).not.toBe('connected');
        await stillServed(holder, 'lookalike-1', commander);
        expect(await Promise.race([holderClosed, Promise.resolve('open')])).toBe('open');
        // The metrics' help text names unknown_ca as the reason for a chain outside the bundle.
        await counterReaches('tlsfleet_broker_handshake_failures_total', { reason: 'unknown_ca' }, before + 1);
      } finally {
        await otherCa.stop();
      }
    });

    it('refuses a revoked certificate with CONNACK 5 "not authorized" and counts reason revoked', async () => {
      const d = await env.enroll('revoked-1');
      const live = await open(d);
      const liveClosed = closedAt(live);
      const res = await postJson(`${env.url}/v1/devices/revoked-1/revoke`, {}, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
      expect(res.status).toBe(200);
      // The live session closing shows that the broker has the new CRL.
      await liveClosed;
      const before = await counter('tlsfleet_broker_auth_failures_total', { reason: 'revoked' });
      const a = await attempt(asIdentity(d));
      expect(a.outcome).toBe('refused');
      expect(a.code).toBe(NOT_AUTHORIZED);
      await counterReaches('tlsfleet_broker_auth_failures_total', { reason: 'revoked' }, before + 1);
    });

    it("refuses d2's certificate presenting clientId d1 with CONNACK 5, while d1 stays connected and keeps receiving", async () => {
      const d1 = await env.enroll('spoof-d1');
      const d2 = await env.enroll('spoof-d2');
      const holder = await open(d1);
      const commander = await open(ingest, { clientId: 'ingest' });
      const holderClosed = closedAt(holder);
      const before = await counter('tlsfleet_broker_auth_failures_total', { reason: 'client_id_mismatch' });
      const a = await attempt(asIdentity(d2, { clientId: 'spoof-d1' }));
      expect(a.outcome).toBe('refused');
      expect(a.code).toBe(NOT_AUTHORIZED);
      await counterReaches('tlsfleet_broker_auth_failures_total', { reason: 'client_id_mismatch' }, before + 1);
      await stillServed(holder, 'spoof-d1', commander);
      expect(holder.connected).toBe(true);
      expect(await Promise.race([holderClosed, Promise.resolve('open')])).toBe('open');
    });

    it('refuses a zero-length clientId with clean session 0 and closes the connection', async () => {
      const d = await env.enroll('empty-id-1');
      const raw = await rawMqtt(env.broker.port, d, env.ca);
      raw.sendBytes(EMPTY_ID_UNCLEAN_CONNECT);
      const connack = (await raw.next('connack')) as { returnCode?: number };
      // [MQTT-3.1.3-8] names 0x02 "identifier rejected"; the broker's own rule answers 5. Either refuses.
      expect(connack.returnCode).not.toBe(0);
      expect([2, NOT_AUTHORIZED]).toContain(connack.returnCode);
      await raw.closed;
      expect(raw.packets.map((p) => p.cmd)).toEqual(['connack']);
    });
  });

  describe('acl', () => {
    it('delivers a device publish on its own topic at QoS 0 and 1 to a service subscribed to devices/+/# (mqtt.js)', async () => {
      const { box } = await serviceListener();
      const dev = await open(await env.enroll('own-1'));
      await dev.publishAsync('devices/own-1/telemetry', 'at-qos-0', { qos: 0 });
      await dev.publishAsync('devices/own-1/telemetry', 'at-qos-1', { qos: 1 });
      expect(await box.next((m) => m.payload === 'at-qos-0')).toMatchObject({ topic: 'devices/own-1/telemetry', qos: 0 });
      expect(await box.next((m) => m.payload === 'at-qos-1')).toMatchObject({ topic: 'devices/own-1/telemetry', qos: 1 });
    });

    it("delivers a service's command and the device's own publish to the device subscribed to its devices/<id>/#", async () => {
      const dev = await open(await env.enroll('own-2'));
      const box = inbox(dev);
      expect(await grantedQos(dev, 'devices/own-2/#', 1)).toBe(1);
      const svc = await open(ingest, { clientId: 'ingest' });
      await svc.publishAsync('devices/own-2/commands/x', 'reboot', { qos: 1 });
      await dev.publishAsync('devices/own-2/state', 'mine', { qos: 1 });
      expect(await box.next((m) => m.payload === 'reboot')).toMatchObject({ topic: 'devices/own-2/commands/x', qos: 1 });
      expect(await box.next((m) => m.payload === 'mine')).toMatchObject({ topic: 'devices/own-2/state', qos: 1 });
    });

    it("delivers a service's QoS 1 command at QoS 1 to a device subscribed to devices/<id>/# at QoS 0 and devices/<id>/commands/# at QoS 1 [MQTT-3.3.5-1]", async () => {
      const dev = await open(await env.enroll('overlap-1'));
      const box = inbox(dev);
      expect(await grantedQos(dev, 'devices/overlap-1/#', 0)).toBe(0);
      expect(await grantedQos(dev, 'devices/overlap-1/commands/#', 1)).toBe(1);
      const svc = await open(ingest, { clientId: 'ingest' });
      await svc.publishAsync('devices/overlap-1/commands/reboot', 'now', { qos: 1 });
      expect(await within(box.next((m) => m.payload === 'now' && m.qos === 1), 10_000, 'the command at QoS 1')).toMatchObject({ topic: 'devices/overlap-1/commands/reboot' });
    });

    it("carries a device's mosquitto_pub at QoS 1 to a service's mosquitto_sub on devices/+/#", async () => {
      const dev = await env.enroll('mosq-1');
      const sub = mosquittoSub([...mosquittoArgs(env.broker.port, env.caFile, ingest), '-t', 'devices/+/#', '-q', '1', '-C', '1']);
      try {
        await sub.waitFor(/Subscribed \(mid: \d+\): \d+/);
        expect(sub.output()).toMatch(/Subscribed \(mid: \d+\): 1$/m);
        const pub = await mosquittoPub([...mosquittoArgs(env.broker.port, env.caFile, dev), '-t', 'devices/mosq-1/telemetry', '-m', 'from-mosquitto', '-q', '1']);
        expect(pub.code, pub.output).toBe(0);
        await sub.waitFor(/^devices\/mosq-1\/telemetry from-mosquitto$/m);
      } finally {
        await sub.stop();
      }
    });

    // The device's own publish back to itself needs a second connection with its clientId,
    // which would take the subscriber's session over; mqtt.js covers it on one connection above.
    it("carries a service's mosquitto_pub commands to the device's mosquitto_sub on its own devices/<id>/#", async () => {
      const dev = await env.enroll('mosq-2');
      const sub = mosquittoSub([...mosquittoArgs(env.broker.port, env.caFile, dev), '-t', 'devices/mosq-2/#', '-q', '1', '-C', '2']);
      try {
        // `Subscribed (mid: n): 1`: granted QoS 1, not 0x80 (128).
        await sub.waitFor(/Subscribed \(mid: \d+\): \d+/);
        expect(sub.output()).toMatch(/Subscribed \(mid: \d+\): 1$/m);
        const cmd = await mosquittoPub([...mosquittoArgs(env.broker.port, env.caFile, ingest), '-t', 'devices/mosq-2/commands/x', '-m', 'cmd-from-service', '-q', '1']);
        expect(cmd.code, cmd.output).toBe(0);
        await sub.waitFor(/^devices\/mosq-2\/commands\/x cmd-from-service$/m);
        // A second command: the subscription keeps delivering (-C 2 exits after both).
        const second = await mosquittoPub([...mosquittoArgs(env.broker.port, env.caFile, ingest), '-t', 'devices/mosq-2/commands/y', '-m', 'second', '-q', '1']);
        expect(second.code, second.output).toBe(0);
        await sub.waitFor(/^devices\/mosq-2\/commands\/y second$/m);
      } finally {
        await sub.stop();
      }
    });

    it.each([0, 1] as const)("never delivers a device's QoS %i publish to another device's topic, and closes the publisher", async (qos) => {
      const owner = await open(await env.enroll(`victim-q${qos}`));
      const ownerBox = inbox(owner);
      expect(await grantedQos(owner, `devices/victim-q${qos}/#`)).toBe(1);
      const { box: serviceBox } = await serviceListener();
      const attacker = await open(await env.enroll(`attacker-q${qos}`));
      const attackerClosed = closedAt(attacker);
      const denialsBefore = await counter('tlsfleet_broker_acl_denials_total', { action: 'publish' });
      attacker.publish(`devices/victim-q${qos}/x`, 'forged', { qos });
      await attackerClosed;
      await counterReaches('tlsfleet_broker_acl_denials_total', { action: 'publish' }, denialsBefore + 1);
      // A marker published after the refusal arrives; the forged message never did before it.
      await owner.publishAsync(`devices/victim-q${qos}/marker`, 'after', { qos: 1 });
      await ownerBox.next((m) => m.payload === 'after');
      await serviceBox.next((m) => m.payload === 'after');
      expect(ownerBox.messages.map((m) => m.payload)).not.toContain('forged');
      expect(serviceBox.messages.map((m) => m.payload)).not.toContain('forged');
    });

    it.each(['devices/+/x', 'devices/#', '#', '+/+/x', 'devices/fdev-1/#', '$SYS/#', '$share/g/devices/fdev-2/#', '$share/g/devices/fdev-1/#'])(
      'refuses the subscription %s from device fdev-2 with SUBACK 0x80 and keeps the connection up',
      async (filter) => {
        const dev = await open(await env.enroll('fdev-2'));
        const closed = closedAt(dev);
        const denialsBefore = await counter('tlsfleet_broker_acl_denials_total', { action: 'subscribe' });
        expect(await grantedQos(dev, filter)).toBe(SUBACK_FAILURE);
        await counterReaches('tlsfleet_broker_acl_denials_total', { action: 'subscribe' }, denialsBefore + 1);
        // Still connected and served on its own topic.
        const box = inbox(dev);
        expect(await grantedQos(dev, 'devices/fdev-2/#')).toBe(1);
        await dev.publishAsync('devices/fdev-2/alive', filter, { qos: 1 });
        expect((await box.next((m) => m.topic === 'devices/fdev-2/alive' && m.payload === filter)).payload).toBe(filter);
        expect(dev.connected).toBe(true);
        expect(await Promise.race([closed, Promise.resolve('open')])).toBe('open');
        dev.end(true);
      },
    );

    it.each(['#', '$SYS/#', 'other/+/x', '$share/g/devices/+/#'])('refuses the subscription %s from the service with SUBACK 0x80', async (filter) => {
      const svc = await open(ingest, { clientId: 'ingest' });
      expect(await grantedQos(svc, filter)).toBe(SUBACK_FAILURE);
      expect(await grantedQos(svc, 'devices/+/#')).toBe(1);
      expect(svc.connected).toBe(true);
    });

    it("delivers a retained devices/<id>/state to the device's later own subscription and to a service, never to another device", async () => {
      const d1 = await env.enroll('ret-d1');
      const d2 = await env.enroll('ret-d2');
      const first = await open(d1);
      await first.publishAsync('devices/ret-d1/state', 'retained-d1', { qos: 1, retain: true });
      first.end(true);
      // d2 keeps a retained message of its own: it arrives after any retained message of an
      // earlier subscription on the same connection, so it bounds the wait below.
      const d2pub = await open(d2);
      await d2pub.publishAsync('devices/ret-d2/state', 'retained-d2', { qos: 1, retain: true });
      d2pub.end(true);

      const again = await open(d1);
      const againBox = inbox(again);
      expect(await grantedQos(again, 'devices/ret-d1/#')).toBe(1);
      expect(await againBox.next((m) => m.payload === 'retained-d1')).toMatchObject({ topic: 'devices/ret-d1/state', retain: true });

      const svc = await open(ingest, { clientId: 'ingest' });
      const svcBox = inbox(svc);
      expect(await grantedQos(svc, 'devices/+/state')).toBe(1);
      expect(await svcBox.next((m) => m.payload === 'retained-d1')).toMatchObject({ topic: 'devices/ret-d1/state', retain: true });

      const other = await open(d2);
      const otherBox = inbox(other);
      for (const filter of ['devices/ret-d1/state', 'devices/ret-d1/#', 'devices/+/state', '#']) {
        expect(await grantedQos(other, filter), filter).toBe(SUBACK_FAILURE);
      }
      expect(await grantedQos(other, 'devices/ret-d2/state')).toBe(1);
      await otherBox.next((m) => m.payload === 'retained-d2');
      expect(otherBox.messages.map((m) => m.payload)).toEqual(['retained-d2']);
    });
  });

  describe('will', () => {
    it('refuses a will to a forbidden topic at CONNECT with CONNACK 5 and counts reason will_denied', async () => {
      const d = await env.enroll('will-bad');
      const before = await counter('tlsfleet_broker_auth_failures_total', { reason: 'will_denied' });
      for (const topic of ['devices/someone-else/status', 'devices/+/status', 'fleet/will-bad']) {
        const a = await attempt(asIdentity(d, { will: { topic, payload: Buffer.from('offline'), qos: 1, retain: false } }));
        expect(a.outcome, topic).toBe('refused');
        expect(a.code, topic).toBe(NOT_AUTHORIZED);
      }
      await counterReaches('tlsfleet_broker_auth_failures_total', { reason: 'will_denied' }, before + 3);
    });

    it("delivers an allowed will to a service subscriber when the device's socket is destroyed", async () => {
      const { box } = await serviceListener();
      const dev = await open(await env.enroll('will-ok'), { will: { topic: 'devices/will-ok/status', payload: Buffer.from('gone'), qos: 1, retain: false } });
      const closed = closedAt(dev);
      dev.stream.destroy();
      await closed;
      expect(await box.next((m) => m.payload === 'gone')).toMatchObject({ topic: 'devices/will-ok/status' });
    });
  });
});
