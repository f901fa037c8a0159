import { generate, type IPublishPacket } from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { deduplicateDeliveries } from './delivery-dedupe.js';
import { guardedAedes, type RawMqttClient } from './loopback-pair.fixture.js';

type Broker = Awaited<ReturnType<typeof guardedAedes>>;

const publish = (topic: string, payload: string, flags: Partial<IPublishPacket> = {}) =>
  generate({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, retain: false, dup: false, ...flags });

/** A client subscribed to `filters` at QoS 0. */
async function subscriber(broker: Broker, id: string, ...filters: string[]): Promise<RawMqttClient> {
  const sub = await broker.client(id);
  sub.socket.write(generate({ cmd: 'subscribe', messageId: 1, subscriptions: filters.map((topic) => ({ topic, qos: 0 as const })) }));
  await sub.next('suback');
  return sub;
}

/** The payloads of every PUBLISH `c` has received, once the broker has answered a PINGREQ sent after `expected` of them arrived. */
async function received(c: RawMqttClient, expected: number): Promise<string[]> {
  const payload = async () => ((await c.next('publish')) as IPublishPacket).payload.toString();
  const payloads: string[] = [];
  for (let i = 0; i < expected; i++) payloads.push(await payload());
  c.socket.write(generate({ cmd: 'pingreq' }));
  await c.next('pingresp');
  while (c.waiting('publish') > 0) payloads.push(await payload());
  return payloads;
}

describe('deduplicateDeliveries', () => {
  let broker: Broker | undefined;
  afterEach(() => broker?.close());

  it('lets a live subscriber have a retained message and the one read right after it, which Aedes emits first', async () => {
    broker = await guardedAedes();
    deduplicateDeliveries(broker.aedes);
    const sub = await subscriber(broker, 'sub', 'devices/+/t');
    const pub = await broker.client('pub');
    pub.socket.write(Buffer.concat([publish('devices/d1/t', 'retained', { retain: true }), publish('devices/d2/t', 'right-after')]));
    expect((await received(sub, 2)).sort()).toEqual(['retained', 'right-after']);
  });

  it('delivers each message once to a subscriber whose two filters match it', async () => {
    broker = await guardedAedes();
    deduplicateDeliveries(broker.aedes);
    const sub = await subscriber(broker, 'sub', 'devices/+/t', 'devices/d1/#');
    const pub = await broker.client('pub');
    pub.socket.write(Buffer.concat([publish('devices/d1/t', 'one', { retain: true }), publish('devices/d1/t', 'two')]));
    expect((await received(sub, 2)).sort()).toEqual(['one', 'two']);
  });

  it.each([
    ['the QoS 0 filter first', 0, 1],
    ['the QoS 1 filter first', 1, 0],
  ] as const)('delivers a QoS 1 message at QoS 1 to a client whose QoS 0 and QoS 1 filters both match it, %s [MQTT-3.3.5-1]', async (_, firstQos, secondQos) => {
    broker = await guardedAedes();
    deduplicateDeliveries(broker.aedes);
    const sub = await broker.client('sub');
    const filters = { 0: 'devices/d1/#', 1: 'devices/d1/commands/#' };
    sub.socket.write(generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filters[firstQos], qos: firstQos }, { topic: filters[secondQos], qos: secondQos }] }));
    await sub.next('suback');
    const pub = await broker.client('pub');
    pub.socket.write(publish('devices/d1/commands/reboot', 'cmd', { qos: 1, messageId: 7 }));
    const copies = [(await sub.next('publish')) as IPublishPacket];
    sub.socket.write(generate({ cmd: 'pingreq' }));
    await sub.next('pingresp');
    while (sub.waiting('publish') > 0) copies.push((await sub.next('publish')) as IPublishPacket);
    // A copy per filter at that filter's QoS is allowed (§3.3.5); a QoS 1 copy is required.
    expect(copies.map((c) => c.qos).sort()).toEqual([0, 1]);
    expect(copies.map((c) => c.payload.toString())).toEqual(['cmd', 'cmd']);
  });

  it('delivers a QoS 0 message once to a client whose QoS 0 and QoS 1 filters both match it: both copies would be QoS 0', async () => {
    broker = await guardedAedes();
    deduplicateDeliveries(broker.aedes);
    const sub = await broker.client('sub');
    sub.socket.write(generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/d1/#', qos: 0 }, { topic: 'devices/d1/commands/#', qos: 1 }] }));
    await sub.next('suback');
    const pub = await broker.client('pub');
    pub.socket.write(publish('devices/d1/commands/reboot', 'cmd'));
    expect(await received(sub, 1)).toEqual(['cmd']);
  });
});
