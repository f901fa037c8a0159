import type { TLSSocket } from 'node:tls';
import type { Packet } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchFixture } from '../../../bench/src/broker/bench-fixture.js';
import { closed, encodePuback, encodePublish, openMqtt, PacketWaiter, settled, subscribe } from '../../../bench/src/broker/mqtt-client.js';
import type { RunningBroker } from '../server/start-broker.js';
import { startRelayBrokers, type RelayBrokers } from './relay-brokers.fixture.js';
import { publishesRelayed } from './publish-relay.js';

// QoS 1 through the publish relay against Aedes' own path: two brokers in this process on
// one data dir, one relaying (the default) and one not, driven by the same raw MQTT clients
// over real TLS. Each test runs on both and expects the same outcome; on the relaying broker
// it also expects the relay to have taken the message. Sessions that must keep a message
// (persistent, offline or not acknowledging) must get it again exactly as from Aedes.

type Cred = BenchFixture['service'];
type Delivery = { topic: string; payload: string; qos: number; messageId: number | undefined };

describe('the publish relay at QoS 1', () => {
  let fixture: BenchFixture;
  let relaying: RunningBroker;
  let aedesOnly: RunningBroker;
  let brokers: RelayBrokers | undefined;
  let sockets: TLSSocket[] = [];

  beforeAll(async () => {
    brokers = await startRelayBrokers('relay-qos1');
    ({ fixture, relaying, aedesOnly, sockets } = brokers);
  }, 120_000);
  afterAll(() => brokers?.close());

  const both = [
    ['relaying', () => relaying, 1],
    ['Aedes-only', () => aedesOnly, 0],
  ] as const;
  const device = (i: number) => fixture.devices[i] as Cred;

  /** A connected client keeping what it receives; QoS 1 deliveries acknowledged unless `ack` is false. */
  async function client(broker: RunningBroker, cred: Cred, opts: { clean?: boolean; ack?: boolean } = {}) {
    const waiter = new PacketWaiter();
    const got: Delivery[] = [];
    const pubacks: number[] = [];
    let socket: TLSSocket | undefined;
    socket = await openMqtt(broker.port, cred, {
      clean: opts.clean,
      onPacket: (p: Packet) => {
        if (p.cmd === 'puback') pubacks.push(p.messageId as number);
        if (p.cmd !== 'publish') return void waiter.offer(p);
        got.push({ topic: p.topic, payload: (p.payload as Buffer).toString(), qos: p.qos, messageId: p.messageId });
        if (p.qos === 1 && opts.ack !== false) socket?.write(encodePuback(p.messageId as number));
      },
    });
    sockets.push(socket);
    return { socket, waiter, got, pubacks };
  }
  const qos1 = (topic: string, id: number, payload: string) => encodePublish(Buffer.from(topic), 1, id, Buffer.from(payload));
  /** Round trips to `c` until it holds `n` deliveries (bounded): Aedes may still be delivering when the publisher's PINGRESP arrives. */
  const holds = async (c: Awaited<ReturnType<typeof client>>, n: number) => {
    for (let i = 0; i < 100 && c.got.length < n; i++) await settled(c);
  };
  /** Closes a client's connection without DISCONNECT once the broker has read all it sent (its PUBACKs). */
  const drop = async (c: Awaited<ReturnType<typeof client>>) => {
    if (!c.socket.destroyed) await settled(c);
    c.socket.destroy();
    await closed(c.socket, 5000);
  };

  it.each(both)('delivers at each subscriber\'s granted QoS and acknowledges the publisher after (%s broker)', async (_name, broker, relayedPerMessage) => {
    const d0 = device(0);
    const atQos1 = await client(broker(), fixture.service);
    expect(await subscribe(atQos1.socket, atQos1.waiter, `devices/${d0.name}/#`, 1)).toBe(1);
    // The device itself, subscribed to its own topics at QoS 0.
    const pub = await client(broker(), d0);
    expect(await subscribe(pub.socket, pub.waiter, `devices/${d0.name}/#`, 0)).toBe(0);
    const relayedBefore = publishesRelayed();
    pub.socket.write(qos1(`devices/${d0.name}/t`, 7, 'reading'));
    // The PUBACK first, then a PINGREQ: a read holding both would be Aedes'.
    await pub.waiter.next('puback', 5000);
    await settled(pub);
    await holds(atQos1, 1);
    expect(pub.pubacks).toEqual([7]);
    expect(atQos1.got).toHaveLength(1);
    expect(atQos1.got[0]).toMatchObject({ topic: `devices/${d0.name}/t`, payload: 'reading', qos: 1 });
    expect(atQos1.got[0]?.messageId).toBeGreaterThan(0);
    expect(pub.got).toEqual([{ topic: `devices/${d0.name}/t`, payload: 'reading', qos: 0, messageId: undefined }]);
    expect(publishesRelayed() - relayedBefore).toBe(relayedPerMessage);
  });

  it.each(both)('gives an unacknowledged message to a persistent session again when it comes back, and not once acknowledged (%s broker)', async (_name, broker, relayedPerMessage) => {
    const d1 = device(1);
    const first = await client(broker(), fixture.service, { clean: false, ack: false });
    expect(await subscribe(first.socket, first.waiter, `devices/${d1.name}/#`, 1)).toBe(1);
    const pub = await client(broker(), d1);
    const relayedBefore = publishesRelayed();
    pub.socket.write(qos1(`devices/${d1.name}/t`, 1, 'keep me'));
    await pub.waiter.next('puback', 5000);
    await holds(first, 1);
    expect(first.got.map((d) => d.payload)).toEqual(['keep me']);
    expect(publishesRelayed() - relayedBefore).toBe(relayedPerMessage);
    await drop(first);

    const second = await client(broker(), fixture.service, { clean: false });
    await holds(second, 1);
    expect(second.got.map((d) => [d.payload, d.qos])).toEqual([['keep me', 1]]);
    await drop(second);

    const third = await client(broker(), fixture.service, { clean: false });
    await settled(third);
    expect(third.got).toEqual([]);
    // Leave no session behind for the other tests.
    await drop(third);
    await drop(await client(broker(), fixture.service, { clean: true }));
  });

  it.each(both)('queues a message for an offline persistent session and delivers it at its return (%s broker)', async (_name, broker, relayedPerMessage) => {
    const d2 = device(2);
    const away = await client(broker(), fixture.service, { clean: false });
    expect(await subscribe(away.socket, away.waiter, `devices/${d2.name}/#`, 1)).toBe(1);
    await drop(away);
    const pub = await client(broker(), d2);
    const relayedBefore = publishesRelayed();
    for (let i = 1; i <= 3; i++) {
      pub.socket.write(qos1(`devices/${d2.name}/t`, i, `while away ${i}`));
      await pub.waiter.next('puback', 5000);
    }
    expect(pub.pubacks).toEqual([1, 2, 3]);
    expect(publishesRelayed() - relayedBefore).toBe(3 * relayedPerMessage);
    const back = await client(broker(), fixture.service, { clean: false });
    await holds(back, 3);
    expect(back.got.map((d) => [d.payload, d.qos])).toEqual([1, 2, 3].map((i) => [`while away ${i}`, 1]));
    await drop(back);
    await drop(await client(broker(), fixture.service, { clean: true }));
  });

  // Reads that hold whole QoS 1 PUBLISH packets are the relay's; the rest (several packets
  // cut across reads), Aedes'. The order per publisher must hold across both paths.
  it.each(both)('keeps one publisher\'s QoS 1 messages in order to a persistent subscriber, each acknowledged once (%s broker)', async (name, broker) => {
    const d3 = device(3);
    const svc = await client(broker(), fixture.service, { clean: false });
    expect(await subscribe(svc.socket, svc.waiter, `devices/${d3.name}/#`, 1)).toBe(1);
    const pub = await client(broker(), d3);
    const relayedBefore = publishesRelayed();
    const count = 1500;
    for (let i = 0; i < count; i++) {
      const frame = qos1(`devices/${d3.name}/t`, (i % 65_535) + 1, `${i}:${'x'.repeat((i * 7919) % 20_000)}`);
      if (i % 3 === 2) await new Promise<void>((resolve, reject) => pub.socket.write(frame, (err) => (err ? reject(err) : resolve())));
      else pub.socket.write(frame);
    }
    await settled(pub);
    await holds(svc, count);
    expect(pub.pubacks).toHaveLength(count);
    expect(svc.got.map((d) => Number(d.payload.slice(0, d.payload.indexOf(':'))))).toEqual(Array.from({ length: count }, (_, i) => i));
    const relayed = publishesRelayed() - relayedBefore;
    if (name === 'relaying') expect([relayed > 0, relayed < count]).toEqual([true, true]);
    else expect(relayed).toBe(0);
    // Everything was acknowledged: nothing comes back to the session.
    await drop(svc);
    const back = await client(broker(), fixture.service, { clean: false });
    await settled(back);
    expect(back.got).toEqual([]);
    await drop(back);
    await drop(await client(broker(), fixture.service, { clean: true }));
  }, 60_000);
});
