import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { enrollAt, type DeviceCredentials } from './harness/broker-env.js';
import { closedAt, grantedQos, inbox, metric, metricUntil, outputMatches, rawMqtt, tryConnect, within, type Inbox } from './harness/broker-probe.js';
import type { Service } from './harness/cli.js';
import { startProvisioningEnv } from './harness/fleet-env.js';
import { postJson } from './harness/https-client.js';
import { freshCsr, healthUrlOf, renewalProbe, startRenewalEnv, type RenewalEnv } from './harness/renewal-env.js';

// Make-before-break: a device that renewed in-band opens a second connection with the same
// client id and its new certificate while the old one is still up. The broker must close the
// old session (presence `disconnected`, reason `takeover`) only once the new connection passed
// TLS and the CONNECT checks, and never for a new connection it refuses.

type Event = { type: string; serial: string; reason?: string };

describe('the session takeover of a device swapping to its renewed certificate', () => {
  let r: RenewalEnv;
  let broker: Service;
  let box: Inbox;

  const events = (id: string): Event[] => box.messages.filter((m) => m.topic.endsWith(`/${id}`) && m.topic.startsWith('$tlsfleet/events/')).map((m) => JSON.parse(m.payload) as Event);
  const nthEvent = (id: string, n: number) => within(box.next(() => events(id).length >= n), 10_000, `presence event ${n} of ${id}`);

  /** Renews `dev` in-band over `client`; the new credentials. */
  async function renewInBand(client: MqttClient, dev: DeviceCredentials): Promise<DeviceCredentials> {
    const probe = await renewalProbe(client, dev.id);
    const { key, csr } = await freshCsr();
    await probe.send({ requestId: `swap-${dev.id}`, csr });
    const answer = await within(probe.answer(`swap-${dev.id}`), 15_000, 'the renewal');
    expect(answer.error).toBeUndefined();
    return { ...dev, serial: answer.serial as string, chain: answer.chain as string, key: key.privatePem };
  }

  beforeAll(async () => {
    r = await startRenewalEnv();
    broker = await r.startBroker(r.relayArgs);
    const watcher = await r.connect(broker, await r.enroll('to-watch', { kind: 'service' }));
    box = inbox(watcher);
    expect(await grantedQos(watcher, '$tlsfleet/events/#')).toBe(1);
  }, 90_000);
  afterAll(async () => {
    await r?.stop();
  });

  it('closes the old session, as `takeover`, only after the new connection\'s TLS and CONNECT passed', async () => {
    const dev = await r.enroll('to-1');
    const old = await r.connect(broker, dev);
    await nthEvent('to-1', 1);
    const renewed = await renewInBand(old, dev);

    const next = await rawMqtt(broker.port, renewed, r.prov.ca);
    // TLS with the new certificate done: the old session still carries messages.
    await old.publishAsync('devices/to-1/still-up', 'x', { qos: 1 });
    expect(old.connected).toBe(true);
    expect(events('to-1').map((e) => e.type)).toEqual(['connected']);

    const closed = closedAt(old);
    next.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'to-1', keepalive: 60 });
    expect((await next.next('connack')) as unknown).toMatchObject({ returnCode: 0 });
    await within(closed, 10_000, 'the old session closed');
    await nthEvent('to-1', 3);
    expect(events('to-1')).toMatchObject([
      { type: 'connected', serial: dev.serial },
      { type: 'disconnected', serial: dev.serial, reason: 'takeover' },
      { type: 'connected', serial: renewed.serial },
    ]);
    next.socket.destroy();
  });

  it('never closes the old session for a new connection it refuses: a revoked certificate, another CA\'s', async () => {
    const dev = await r.enroll('to-2');
    const old = await r.connect(broker, dev);
    await nthEvent('to-2', 1);
    const renewed = await renewInBand(old, dev);

    // The renewed certificate revoked, and the broker enforcing it.
    const crlBefore = await metric(healthUrlOf(broker), 'tlsfleet_broker_crl_number');
    const res = await postJson(`${r.prov.url}/v1/certificates/${renewed.serial}/revoke`, {}, { ca: r.prov.ca, headers: { authorization: `Bearer ${r.prov.adminToken}` } });
    expect(res.status).toBe(200);
    await metricUntil(healthUrlOf(broker), 'tlsfleet_broker_crl_number', {}, (v) => v > crlBefore, 10_000);
    const revoked = await tryConnect(broker.url, { clientId: 'to-2', cert: renewed.chain, key: renewed.key, ca: r.prov.ca });
    expect(revoked.outcome).toBe('refused');
    expect(revoked.code).toBe(5);

    // The same identity under another CA: refused in the TLS handshake.
    const other = await startProvisioningEnv();
    try {
      const foreign = await enrollAt(other, 'to-2');
      const attempt = await tryConnect(broker.url, { clientId: 'to-2', cert: foreign.chain, key: foreign.key, ca: r.prov.ca });
      expect(attempt.outcome).not.toBe('connected');
    } finally {
      await other.stop();
    }

    await old.publishAsync('devices/to-2/still-up', 'x', { qos: 1 });
    expect(old.connected).toBe(true);
    expect(events('to-2').map((e) => e.type)).toEqual(['connected']);
    await within(outputMatches(broker, /"reason":"revoked".*"client":"to-2"|"client":"to-2".*revoked/), 5_000, 'the refusal logged');
  });
});
