import { generate, type IPublishPacket } from 'mqtt-packet';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { onEachClient } from './client-steps.js';
import { deduplicateDeliveries } from './delivery-dedupe.js';
import { trackGrantedQos } from './granted-qos.js';
import { guardedAedes, type RawMqttClient } from '../server/loopback-pair.fixture.js';

type Broker = Awaited<ReturnType<typeof guardedAedes>>;

const publish = (topic: string, payload: string, flags: Partial<IPublishPacket> = {}) =>
  generate({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, retain: false, dup: false, ...flags });

/** A client subscribed, in one SUBSCRIBE and in this order, to each filter at its QoS. */
async function subscriber(broker: Broker, id: string, qosByFilter: Record<string, 0 | 1 | 2>): Promise<RawMqttClient> {
  const sub = await broker.client(id);
  sub.socket.write(generate({ cmd: 'subscribe', messageId: 1, subscriptions: Object.entries(qosByFilter).map(([topic, qos]) => ({ topic, qos })) }));
  await sub.next('suback');
  return sub;
}

/** Every PUBLISH `c` has received, once the broker has answered a PINGREQ sent after `expected` of them arrived. */
async function received(c: RawMqttClient, expected: number): Promise<IPublishPacket[]> {
  const next = async () => (await c.next('publish')) as IPublishPacket;
  const packets: IPublishPacket[] = [];
  for (let i = 0; i < expected; i++) packets.push(await next());
  c.socket.write(generate({ cmd: 'pingreq' }));
  await c.next('pingresp');
  while (c.waiting('publish') > 0) packets.push(await next());
  return packets;
}

const payloads = (packets: IPublishPacket[]) => packets.map((p) => p.payload.toString());

describe('deduplicateDeliveries', () => {
  let broker: Broker;
  beforeEach(async () => {
    broker = await guardedAedes();
    onEachClient(broker.aedes, [trackGrantedQos(), deduplicateDeliveries(broker.aedes)]);
  });
  afterEach(() => broker.close());

  it('lets a live subscriber have a retained message and the one read right after it, which Aedes emits first', async () => {
    const sub = await subscriber(broker, 'sub', { 'devices/+/t': 0 });
    const pub = await broker.client('pub');
    pub.socket.write(Buffer.concat([publish('devices/d1/t', 'retained', { retain: true }), publish('devices/d2/t', 'right-after')]));
    expect(payloads(await received(sub, 2)).sort()).toEqual(['retained', 'right-after']);
  });

  it('delivers each message once to a subscriber whose two filters match it', async () => {
    const sub = await subscriber(broker, 'sub', { 'devices/+/t': 0, 'devices/d1/#': 0 });
    const pub = await broker.client('pub');
    pub.socket.write(Buffer.concat([publish('devices/d1/t', 'one', { retain: true }), publish('devices/d1/t', 'two')]));
    expect(payloads(await received(sub, 2)).sort()).toEqual(['one', 'two']);
  });

  it.each([
    ['the QoS 0 filter first', 0, 1],
    ['the QoS 1 filter first', 1, 0],
  ] as const)('delivers a QoS 1 message at QoS 1 to a client whose QoS 0 and QoS 1 filters both match it, %s [MQTT-3.3.5-1]', async (_, firstQos, secondQos) => {
    const filters = { 0: 'devices/d1/#', 1: 'devices/d1/commands/#' };
    const sub = await subscriber(broker, 'sub', { [filters[firstQos]]: firstQos, [filters[secondQos]]: secondQos });
    const pub = await broker.client('pub');
    pub.socket.write(publish('devices/d1/commands/reboot', 'cmd', { qos: 1, messageId: 7 }));
    const copies = await received(sub, 1);
    // One copy, at the highest QoS among the matching filters (§3.3.5 allows more, not fewer).
    expect(copies.map((c) => c.qos)).toEqual([1]);
    expect(payloads(copies)).toEqual(['cmd']);
  });

  // moscajs/aedes#1074: Aedes caps a copy by the filter equal to the topic's name, if any.
  it.each([
    ['a single wildcard granted QoS 1', { 'devices/d1/#': 1 }, 1],
    ['wildcards granted QoS 2 and QoS 1 (Paho test_overlapping_subscriptions)', { 'devices/d1/#': 2, 'devices/d1/+/+': 1 }, 2],
    ['a wildcard granted QoS 1 and the exact topic QoS 2', { 'devices/d1/#': 1, 'devices/d1/commands/reboot': 2 }, 2],
    ['the exact topic granted QoS 1 and a wildcard QoS 2', { 'devices/d1/commands/reboot': 1, 'devices/d1/#': 2 }, 2],
    ['a QoS 0 wildcard, a QoS 1 wildcard and the exact topic at QoS 0', { 'devices/d1/#': 0, 'devices/d1/+/+': 1, 'devices/d1/commands/reboot': 0 }, 1],
  ] as const)('delivers a QoS 2 message once, at the highest QoS granted among the matching filters: %s [MQTT-3.8.4-6]', async (_, filters, qos) => {
    const sub = await subscriber(broker, 'sub', filters);
    const pub = await broker.client('pub');
    pub.socket.write(publish('devices/d1/commands/reboot', 'cmd', { qos: 2, messageId: 9 }));
    const copies = await received(sub, 1);
    expect(copies.map((c) => c.qos)).toEqual([qos]);
  });

  it('delivers a QoS 0 message once to a client whose QoS 0 and QoS 1 filters both match it: both copies would be QoS 0', async () => {
    const sub = await subscriber(broker, 'sub', { 'devices/d1/#': 0, 'devices/d1/commands/#': 1 });
    const pub = await broker.client('pub');
    pub.socket.write(publish('devices/d1/commands/reboot', 'cmd'));
    expect(payloads(await received(sub, 1))).toEqual(['cmd']);
  });
});
