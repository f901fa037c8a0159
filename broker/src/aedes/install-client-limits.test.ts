import { once } from 'node:events';
import { Duplex, PassThrough } from 'node:stream';
import { Aedes } from 'aedes';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { BrokerContext } from '../server/broker-context.js';
import { BrokerMetrics } from '../server/metrics.js';
import { clientLimits } from '../limits/client-limits.js';
import { installClientLimits, type LimitState } from './install-client-limits.js';

/** The parts of aedes-persistence 11 read back here. */
interface Store {
  subscriptionsByClient(client: { id: string }): Promise<{ topic: string }[]>;
  createRetainedStream(pattern: string): AsyncIterable<{ topic: string; payload: Buffer }>;
  incomingGetPacket(client: { id: string }, packet: { messageId: number }): Promise<unknown>;
}

// Aedes and its in-memory persistence in this process, without TLS or ACL (they allow all),
// to read what the persistence holds after each refusal and after the client leaves.
describe('installClientLimits', () => {
  let aedes: Aedes | undefined;
  afterEach(() => new Promise<void>((resolve) => (aedes ? aedes.close(() => resolve()) : resolve())));

  async function broker(limits: Parameters<typeof clientLimits>[0]): Promise<{ aedes: Aedes; state: LimitState; store: Store; metrics: BrokerMetrics }> {
    aedes = await Aedes.createBroker();
    const metrics = new BrokerMetrics();
    const ctx = { logger: pino({ level: 'silent' }), metrics } as unknown as BrokerContext;
    const state = installClientLimits(aedes, ctx, clientLimits(limits));
    return { aedes, state, store: (aedes as unknown as { persistence: Store }).persistence, metrics };
  }

  /** One MQTT 3.1.1 session over an in-memory stream: packets sent, packets read, and its end. */
  async function session(a: Aedes, clientId: string, clean: boolean) {
    const toBroker = new PassThrough();
    const fromBroker = new PassThrough();
    a.handle(Duplex.from({ readable: toBroker, writable: fromBroker }) as never);
    const got: Packet[] = [];
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (p: Packet) => got.push(p));
    fromBroker.on('data', (d: Buffer) => parser.parse(d));
    const send = (p: Packet) => toBroker.write(mqttPacket.generate(p));
    const next = async (cmd: Packet['cmd'], n = 1) => {
      while (got.filter((p) => p.cmd === cmd).length < n) await once(fromBroker, 'data');
      return got.filter((p) => p.cmd === cmd)[n - 1] as Packet;
    };
    send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId, keepalive: 0 });
    await next('connack');
    return { send, next, ended: once(fromBroker, 'close').catch(() => undefined), end: () => toBroker.end() };
  }
  const publish = (topic: string, payload: string, qos: 0 | 1 | 2, retain: boolean, messageId?: number): Packet => ({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain, dup: false, messageId });
  /** Re-checks `done` each turn of the event loop, at most 10,000 times. */
  async function until(done: () => boolean | Promise<boolean>): Promise<void> {
    for (let i = 0; i < 10_000; i++) {
      if (await done()) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
    throw new Error(`never: ${done.toString()}`);
  }

  it('stores none of a persistent session\'s filters past the cap, even beside a granted one in one SUBSCRIBE', async () => {
    const { aedes: a, store, state } = await broker({ maxSubscriptions: 2 });
    const s = await session(a, 'd1', false);
    s.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a', qos: 1 }, { topic: 'b', qos: 1 }, { topic: 'c', qos: 1 }] });
    expect(((await s.next('suback')) as { granted: number[] }).granted).toEqual([1, 1, 128]);
    expect((await store.subscriptionsByClient({ id: 'd1' })).map((sub) => sub.topic)).toEqual(['a', 'b']);
    expect(state.subscriptions()).toBe(2);
    s.end();
    await until(() => state.subscriptions() === 0);
  });

  it('keeps in the store only the retained messages within the sender\'s share, and books a clear back', async () => {
    const { aedes: a, store, state } = await broker({ maxRetainedMessages: 2 });
    const retained = async () => {
      const topics: string[] = [];
      for await (const p of store.createRetainedStream('#')) topics.push(p.topic);
      return topics.sort();
    };
    const s = await session(a, 'd1', true);
    s.send(publish('r/1', 'one', 1, true, 1));
    s.send(publish('r/2', 'two', 1, true, 2));
    await s.next('puback', 2);
    s.send(publish('r/3', 'three', 1, true, 3));
    await s.ended;
    // Aedes acknowledges a QoS 1 PUBLISH before it stores it.
    await until(async () => (await retained()).length === 2);
    expect(await retained()).toEqual(['r/1', 'r/2']);
    expect([state.retainedMessages(), state.retainedBytes()]).toEqual([2, 'r/1one'.length + 'r/2two'.length]);
    const again = await session(a, 'd1', true);
    again.send(publish('r/1', '', 1, true, 4));
    again.send(publish('r/3', 'three', 1, true, 5));
    await again.next('puback', 2);
    await until(async () => (await retained()).includes('r/3'));
    expect(await retained()).toEqual(['r/2', 'r/3']);
    expect(state.retainedBytes()).toBe('r/2two'.length + 'r/3three'.length);
  });

  it('stores at most the cap of unreleased QoS 2 messages across a persistent session\'s connections, and none once a clean session starts', async () => {
    const { aedes: a, store, state } = await broker({ maxInflightQos2: 3 });
    const first = await session(a, 'd1', false);
    for (const id of [1, 2]) first.send(publish('q', `m${id}`, 2, false, id));
    await first.next('pubrec', 2);
    first.end();
    await until(() => Object.keys((a as unknown as { clients: object }).clients).length === 0);
    const second = await session(a, 'd1', false);
    second.send(publish('q', 'm3', 2, false, 3));
    await second.next('pubrec');
    expect(state.inflightQos2()).toBe(3);
    second.send(publish('q', 'm4', 2, false, 4));
    await second.ended;
    await expect(store.incomingGetPacket({ id: 'd1' }, { messageId: 4 })).rejects.toThrow();
    await expect(store.incomingGetPacket({ id: 'd1' }, { messageId: 1 })).resolves.toBeDefined();
    const clean = await session(a, 'd1', true);
    await until(() => state.inflightQos2() === 0);
    await expect(store.incomingGetPacket({ id: 'd1' }, { messageId: 1 })).rejects.toThrow();
    clean.end();
  });
});
