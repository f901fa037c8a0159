import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { generate } from 'mqtt-packet';
import { inbox, metric, outputMatches, rawMqtt, within } from './harness/broker-probe.js';
import type { Service } from './harness/cli.js';
import { startRedis, type RedisServer } from './harness/redis.js';
import { freshCsr, healthUrlOf, renewalProbe, startRenewalEnv, type RenewAnswer, type RenewalEnv } from './harness/renewal-env.js';

// In-band renewal across two brokers sharing a real Redis, and a relay whose own certificate
// runs out while the broker runs.

describe('in-band renewal in a Redis cluster', () => {
  let redis: RedisServer;
  let r: RenewalEnv;
  let a: Service;
  let b: Service;

  beforeAll(async () => {
    redis = await startRedis();
    r = await startRenewalEnv();
    a = await r.startBroker(['--cluster', redis.url, ...r.relayArgs]);
    b = await r.startBroker(['--cluster', redis.url, ...r.relayArgs]);
  }, 90_000);
  afterAll(async () => {
    await r?.stop();
    await redis?.stop();
  });

  it('answers on the same instance the request came in on', async () => {
    const dev = await r.enroll('cl-1');
    const probe = await renewalProbe(await r.connect(b, dev), 'cl-1');
    await probe.send({ requestId: 'on-b', csr: (await freshCsr()).csr });
    const answer = await within(probe.answer('on-b'), 15_000, 'the answer');
    expect(answer.error).toBeUndefined();
    expect(answer.deviceId).toBe('cl-1');
  });

  it('gets the answer to a device whose persistent session has moved to the other instance', async () => {
    const dev = await r.enroll('cl-2');
    const raw = await rawMqtt(a.port, dev, r.prov.ca);
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'cl-2', keepalive: 60 });
    expect((await raw.next('connack')) as unknown).toMatchObject({ returnCode: 0 });
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$tlsfleet/certificates/cl-2/renewed', qos: 1 }] });
    expect((await raw.next('suback')) as unknown).toMatchObject({ granted: [1] });
    // The request and the DISCONNECT in one write: the session is offline before provisioning answers.
    const { csr } = await freshCsr();
    raw.sendBytes(Buffer.concat([
      generate({ cmd: 'publish', topic: '$tlsfleet/certificates/cl-2/renew', payload: JSON.stringify({ requestId: 'moved', csr }), qos: 1, messageId: 2, retain: false, dup: false }),
      generate({ cmd: 'disconnect' }),
    ]));
    await raw.closed;
    // (Its PUBACK may be cut by the close; the answer was not there yet.)
    expect(raw.packets.some((p) => p.cmd === 'publish')).toBe(false);
    await within(outputMatches(a, /"requestId":"moved".*in-band renewal/), 15_000, 'the request handled on A');

    const client = mqtt.connect(b.url, { clientId: 'cl-2', clean: false, cert: dev.chain, key: dev.key, ca: r.prov.ca, protocolVersion: 4, reconnectPeriod: 0 });
    const box = inbox(client);
    try {
      const m = await within(box.next((x) => x.topic === '$tlsfleet/certificates/cl-2/renewed'), 15_000, 'the queued answer on the other instance');
      const answer = JSON.parse(m.payload) as RenewAnswer;
      expect(answer).toMatchObject({ requestId: 'moved', deviceId: 'cl-2' });
      expect(answer.error).toBeUndefined();
      expect(m.qos).toBe(1);
    } finally {
      client.end(true);
    }
    expect(await metric(healthUrlOf(a), 'tlsfleet_broker_inband_renewals_total', { result: 'issued' })).toBeGreaterThanOrEqual(1);
  });
});

describe('a relay whose own certificate runs out', () => {
  let r: RenewalEnv;
  let broker: Service;

  beforeAll(async () => {
    r = await startRenewalEnv({ relayTtlSeconds: 12 });
    broker = await r.startBroker(r.relayArgs);
  }, 90_000);
  afterAll(async () => {
    await r?.stop();
  });

  it('is renewed by the broker before it expires, and relaying goes on after the first certificate expired', async () => {
    await within(outputMatches(broker, /renewal relay: own identity renewed/), 15_000, 'the relay identity renewed');
    const renewed = JSON.parse(broker.output().split('\n').find((l) => l.includes('own identity renewed')) as string) as { notAfter: string };
    expect(Date.parse(renewed.notAfter)).toBeGreaterThan(Date.now());
    // Past the first certificate's 12 s: relaying still works, with the renewed one.
    const ready = JSON.parse(broker.output().split('\n').find((l) => l.includes('renewal relay ready')) as string) as { notAfter: string };
    // A clock deadline, not a guess: provisioning refuses an expired client certificate.
    await untilClock(Date.parse(ready.notAfter) + 500);
    const dev = await r.enroll('rr-1');
    const probe = await renewalProbe(await r.connect(broker, dev), 'rr-1');
    await probe.send({ requestId: 'after', csr: (await freshCsr()).csr });
    const answer = await within(probe.answer('after'), 15_000, 'the answer');
    expect(answer.error).toBeUndefined();
    expect(Date.now()).toBeGreaterThan(Date.parse(ready.notAfter));
  });
});

/** Resolves once the wall clock reaches `atMs`. */
function untilClock(atMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, atMs - Date.now())));
}
