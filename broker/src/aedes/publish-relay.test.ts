import { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import type { Packet } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchFixture } from '../../../bench/src/broker/bench-fixture.js';
import { closed, encodePuback, encodePublish, openMqtt, PacketWaiter, settled, subscribe } from '../../../bench/src/broker/mqtt-client.js';
import type { RunningBroker } from '../server/start-broker.js';
import { startRelayBrokers, type RelayBrokers } from './relay-brokers.fixture.js';
import { publishesReadHere } from './mqtt-packet-parser.js';
import { publishesRelayed } from './publish-relay.js';

// The publish relay at QoS 0 against Aedes' own path: two brokers in this process on one data dir, one
// with the relay (the default) and one without, driven by the same raw MQTT clients over
// real TLS. Whatever the relay takes must reach subscribers exactly as Aedes would have
// delivered it; whatever it must not take (refusals, retained messages, a subscriber that
// is behind) must still be Aedes'. The Aedes-only broker also guards gateReads: without it
// Aedes reads on for a subscriber that is behind.

type Cred = BenchFixture['service'];
type Delivery = { topic: string; payload: string; qos: number; retain: boolean };

describe('the publish relay at QoS 0', () => {
  let fixture: BenchFixture;
  let relaying: RunningBroker;
  let aedesOnly: RunningBroker;
  let brokers: RelayBrokers | undefined;
  let sockets: TLSSocket[] = [];
  /** Added to the relaying broker's clock: a test moves it past every certificate's notAfter. */
  let clockSkewMs = 0;

  beforeAll(async () => {
    brokers = await startRelayBrokers('relay-qos0', () => Date.now() + clockSkewMs);
    ({ fixture, relaying, aedesOnly, sockets } = brokers);
  }, 120_000);
  afterAll(() => brokers?.close());

  const device = (i: number) => fixture.devices[i] as Cred;
  const bothBrokers = () => [
    ['relaying', () => relaying],
    ['Aedes-only', () => aedesOnly],
  ] as const;

  /** A connected client; the PUBLISH packets it receives are kept in order, QoS 1 ones acknowledged. */
  async function client(broker: RunningBroker, cred: Cred, keepaliveS?: number) {
    const waiter = new PacketWaiter();
    const got: Delivery[] = [];
    const deliveries = new EventEmitter();
    let socket: TLSSocket | undefined;
    socket = await openMqtt(broker.port, cred, {
      keepaliveS,
      onPacket: (p: Packet) => {
        if (p.cmd !== 'publish') return void waiter.offer(p);
        got.push({ topic: p.topic, payload: (p.payload as Buffer).toString(), qos: p.qos, retain: p.retain });
        deliveries.emit('delivery');
        if (p.qos === 1) socket?.write(encodePuback(p.messageId as number));
      },
    });
    sockets.push(socket);
    return { socket, waiter, got, deliveries };
  }
  type Client = Awaited<ReturnType<typeof client>>;
  /** Resolves once `c` has received `n` messages; a deadline only for a test that would otherwise hang. */
  const arrived = (c: Client, n: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (c.got.length < n) return;
        clearTimeout(timer);
        c.deliveries.off('delivery', check);
        resolve();
      };
      const timer = setTimeout(() => {
        c.deliveries.off('delivery', check);
        reject(new Error(`${c.got.length} of ${n} messages arrived`));
      }, 15_000);
      c.deliveries.on('delivery', check);
      check();
    });
  const qos0 = (topic: string | Buffer, payload: string, retain = false) => encodePublish(typeof topic === 'string' ? Buffer.from(topic) : topic, 0, 0, Buffer.from(payload), retain);
  /** Resolves once `frame` has been handed to the kernel: the next write starts a TLS record of its own. */
  const writeAlone = (c: Client, frame: Buffer) => new Promise<void>((resolve, reject) => c.socket.write(frame, (err) => (err ? reject(err) : resolve())));
  /** The service subscribed to all of a device's topics at `qos`, and that device connected. */
  const serviceAndDevice = async (broker: RunningBroker, cred: Cred, qos: 0 | 1) => {
    const svc = await client(broker, fixture.service);
    expect(await subscribe(svc.socket, svc.waiter, `devices/${cred.name}/#`, qos)).toBe(qos);
    return { svc, pub: await client(broker, cred) };
  };
  /** The leading number of each payload `c` received ("17:..."). */
  const indexesGot = (c: Client) => c.got.map((d) => Number(d.payload.slice(0, d.payload.indexOf(':'))));
  const upTo = (count: number) => Array.from({ length: count }, (_, i) => i);
  /** The broker's messages counter for one direction, folded as a scrape folds it. */
  const messages = async (broker: RunningBroker, direction: 'in' | 'out') => {
    const values = (await broker.metrics.messages.get()).values;
    return values.find((v) => v.labels.direction === direction)?.value ?? 0;
  };

  it('relays a QoS 0 message to a live subscriber unchanged, counted in and out', async () => {
    const d0 = device(0);
    const { svc, pub } = await serviceAndDevice(relaying, d0, 1);
    const [relayedBefore, inBefore, outBefore] = [publishesRelayed(), await messages(relaying, 'in'), await messages(relaying, 'out')];
    pub.socket.write(qos0(`devices/${d0.name}/t`, 'reading-1'));
    await settled(pub);
    await settled(svc);
    expect(svc.got).toEqual([{ topic: `devices/${d0.name}/t`, payload: 'reading-1', qos: 0, retain: false }]);
    expect(publishesRelayed()).toBe(relayedBefore + 1);
    expect(await messages(relaying, 'in')).toBe(inBefore + 1);
    expect(await messages(relaying, 'out')).toBe(outBefore + 1);
  });

  it.each(bothBrokers())('sends one copy to each subscriber, however many of its filters match (%s broker)', async (_name, broker) => {
    const d1 = device(1);
    const svc = await client(broker(), fixture.service);
    expect(await subscribe(svc.socket, svc.waiter, 'devices/+/t', 0)).toBe(0);
    expect(await subscribe(svc.socket, svc.waiter, `devices/${d1.name}/t`, 0)).toBe(0);
    // MQTT 3.1.1 has no "no local": the publisher, subscribed to its own topics, gets its message too.
    const pub = await client(broker(), d1);
    expect(await subscribe(pub.socket, pub.waiter, `devices/${d1.name}/#`, 0)).toBe(0);
    pub.socket.write(qos0(`devices/${d1.name}/t`, 'once'));
    await settled(pub);
    await settled(svc);
    expect(svc.got.map((d) => d.payload)).toEqual(['once']);
    expect(pub.got.map((d) => d.payload)).toEqual(['once']);
  });

  // Reads that end on a packet boundary are the relay's; the rest, Aedes'. Messages of
  // every size from 10 bytes to 20 KiB, some written together, split the stream both ways.
  it.each(bothBrokers())("keeps one publisher's QoS 0 messages in order, whether the relay or Aedes reads them (%s broker)", async (name, broker) => {
    const d2 = device(2);
    const { svc, pub } = await serviceAndDevice(broker(), d2, 0);
    const [relayedBefore, readBefore] = [publishesRelayed(), publishesReadHere()];
    const count = 2000;
    for (let i = 0; i < count; i++) {
      const frame = qos0(`devices/${d2.name}/t`, `${i}:${'x'.repeat((i * 7919) % (20 * 1024))}`);
      if (i % 3 === 2) await writeAlone(pub, frame);
      else pub.socket.write(frame);
    }
    await arrived(svc, count);
    expect(indexesGot(svc)).toEqual(upTo(count));
    const [relayed, readByAedes] = [publishesRelayed() - relayedBefore, publishesReadHere() - readBefore];
    expect(relayed + readByAedes).toBe(count);
    if (name === 'relaying') expect([relayed > 0, readByAedes > 0]).toEqual([true, true]);
    else expect(relayed).toBe(0);
  }, 30_000);

  it.each(bothBrokers())('delivers each of QoS 0, QoS 1 and retained messages once, retained ones with RETAIN clear (%s broker)', async (_name, broker) => {
    const d2 = device(2);
    const { svc, pub } = await serviceAndDevice(broker(), d2, 1);
    const kinds = ['qos0', 'qos0', 'qos0', 'qos1', 'retained'] as const;
    for (let i = 0; i < 300; i++) {
      const kind = kinds[i % kinds.length];
      const frame = kind === 'qos1' ? encodePublish(Buffer.from(`devices/${d2.name}/t`), 1, i + 1, Buffer.from(`${kind}:${i}`)) : qos0(`devices/${d2.name}/t`, `${kind}:${i}`, kind === 'retained');
      pub.socket.write(frame);
    }
    await arrived(svc, 300);
    // Aedes itself lets a QoS 1 or retained message fall behind later ones read with it
    // (a PUBACK write, a store): only the order within each kind is kept.
    for (const kind of new Set(kinds)) {
      const got = svc.got.filter((d) => d.payload.startsWith(`${kind}:`)).map((d) => Number(d.payload.slice(kind.length + 1)));
      expect(got).toEqual(upTo(300).filter((i) => kinds[i % kinds.length] === kind));
    }
    // A live subscriber gets retained messages with RETAIN clear ([MQTT-3.3.1-9]).
    expect(svc.got.filter((d) => d.retain)).toEqual([]);
    expect(svc.got.filter((d) => d.qos === 1).map((d) => d.payload.split(':')[0])).toEqual(Array(60).fill('qos1'));
  });

  it('keeps a publisher alive whose only packets are relayed QoS 0 messages (keep alive 1 s)', async () => {
    const d0 = device(0);
    const svc = await client(relaying, fixture.service);
    expect(await subscribe(svc.socket, svc.waiter, `devices/${d0.name}/#`, 0)).toBe(0);
    const pub = await client(relaying, d0, 1);
    const relayedBefore = publishesRelayed();
    // Aedes closes a client that sends nothing for 1.5 keep-alive periods ([MQTT-3.1.2-24]).
    // Ten messages 300 ms apart span twice that; each is the relay's, never Aedes'.
    for (let i = 0; i < 10; i++) {
      await writeAlone(pub, qos0(`devices/${d0.name}/t`, `${i}:alive`));
      await arrived(svc, i + 1);
      await delay(300);
    }
    expect(pub.socket.destroyed).toBe(false);
    expect(publishesRelayed()).toBe(relayedBefore + 10);
    await settled(pub);
  });

  it("leaves a publish from a certificate past its notAfter to Aedes, which refuses it", async () => {
    const d0 = device(0);
    const { svc, pub } = await serviceAndDevice(relaying, d0, 0);
    const relayedBefore = publishesRelayed();
    // The session's own expiry timer was armed in real time at CONNECT and stays quiet: only
    // the checks made per message see the clock move. Ten years is past any certificate here.
    clockSkewMs = 10 * 365 * 24 * 3600 * 1000;
    try {
      pub.socket.write(qos0(`devices/${d0.name}/t`, 'too late'));
      await closed(pub.socket, 5000);
    } finally {
      clockSkewMs = 0;
    }
    await settled(svc);
    expect(svc.got).toEqual([]);
    expect(publishesRelayed()).toBe(relayedBefore);
  });

  it('stores a retained message through Aedes, for a subscriber that comes later', async () => {
    const d3 = device(3);
    const pub = await client(relaying, d3);
    const relayedBefore = publishesRelayed();
    pub.socket.write(qos0(`devices/${d3.name}/state`, 'on', true));
    await settled(pub);
    expect(publishesRelayed()).toBe(relayedBefore);
    const svc = await client(relaying, fixture.service);
    expect(await subscribe(svc.socket, svc.waiter, `devices/${d3.name}/state`, 0)).toBe(0);
    await settled(svc);
    expect(svc.got).toEqual([{ topic: `devices/${d3.name}/state`, payload: 'on', qos: 0, retain: true }]);
  });

  it.each([
    ["another device's topic", (_own: string, other: string) => `devices/${other}/t`],
    ['a topic with a wildcard', (own: string) => `devices/${own}/+`],
    ['a topic with NUL', (own: string) => `devices/${own}/t\u0000x`],
    ['a topic deeper than Aedes allows', (own: string) => `devices/${own}/${'x/'.repeat(120)}t`],
    // A lone continuation byte: decoded, it would be U+FFFD, which is how the ACL sees it.
    ['a topic of ill-formed UTF-8', (own: string) => Buffer.concat([Buffer.from(`devices/${own}/t`), Buffer.of(0x80)])],
  ])('leaves a publish to %s to Aedes, which closes the connection and delivers nothing', async (_what, topicOf) => {
    const [own, other] = [device(0), device(1)];
    const svc = await client(relaying, fixture.service);
    expect(await subscribe(svc.socket, svc.waiter, `devices/${own.name}/#`, 0)).toBe(0);
    expect(await subscribe(svc.socket, svc.waiter, `devices/${other.name}/#`, 0)).toBe(0);
    const pub = await client(relaying, own);
    const relayedBefore = publishesRelayed();
    pub.socket.write(qos0(topicOf(own.name, other.name), 'refused'));
    await closed(pub.socket, 5000);
    expect(pub.socket.destroyed).toBe(true);
    await settled(svc);
    expect(svc.got).toEqual([]);
    expect(publishesRelayed()).toBe(relayedBefore);
  });

  // 48 MiB: more than every kernel and TLS buffer between the two clients can hold. The
  // publisher writes one message at a time, as a device does. Messages larger than a TLS
  // record span two reads (Aedes'); smaller ones come one to a read (the relay's, until the
  // subscriber is behind).
  it.each([
    ['relaying', 16 * 1024, 3072, () => relaying],
    ['relaying', 8000, 6000, () => relaying],
    ['Aedes-only', 16 * 1024, 3072, () => aedesOnly],
    ['Aedes-only', 8000, 6000, () => aedesOnly],
  ])('stops reading a publisher while its subscriber is behind, and loses nothing (%s broker, %i-byte messages)', async (_name, size, count, broker) => {
    const d1 = device(1);
    const { svc, pub } = await serviceAndDevice(broker(), d1, 0);
    svc.socket.pause();
    const body = 'x'.repeat(size);
    let written = 0;
    const writing = (async () => {
      for (let i = 0; i < count; i++) {
        await writeAlone(pub, qos0(`devices/${d1.name}/t`, `${i}:${body}`));
        written = i + 1;
      }
    })();
    // Had the broker read on, buffering for the subscriber, the publisher would be done
    // within moments. Aedes waits up to its drainTimeout (10 s) before cutting the subscriber.
    await delay(2000);
    expect(written).toBeLessThan(count);
    svc.socket.resume();
    await writing;
    await arrived(svc, count);
    expect(indexesGot(svc)).toEqual(upTo(count));
  }, 60_000);
});
