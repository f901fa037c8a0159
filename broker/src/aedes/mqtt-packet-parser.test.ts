import { PassThrough } from 'node:stream';
import { generate, type Packet } from 'mqtt-packet';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { guardConnection } from '../server/connection-guard.js';
import { guardedAedes, relayQoS0AndQoS1, testGuard } from '../server/loopback-pair.fixture.js';
import { connect4, plain, publish, referenceRead, withRemaining } from '../wire/mqtt-packet-reference.fixture.js';
import { aedesMqttPacket } from './aedes-parser.fixture.js';
import { acknowledgementsRead, installPublishReader, publishesReadHere } from './mqtt-packet-parser.js';

/** A parser as Aedes makes one, on a guarded connection (or not); what it emits, read in the given pieces. */
function readAsAedes(pieces: Buffer[], guarded = true) {
  const p = aedesMqttPacket.parser();
  p.client = { conn: guarded ? guardConnection(new PassThrough(), testGuard()) : new PassThrough() };
  const packets: Packet[] = [];
  const errors: string[] = [];
  p.on('packet', (packet) => packets.push(packet));
  p.on('error', (e) => errors.push(e.message));
  for (const piece of pieces) p.parse(piece);
  return { packets, errors, parser: p };
}

describe('installPublishReader', () => {
  beforeAll(() => installPublishReader());

  /** A session's worth of client packets: CONNECT, then every kind a device sends, PUBLISH in each form. */
  const session = Buffer.concat([
    connect4,
    publish({ topic: 'devices/d1/t', payload: 'q0' }),
    generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/d1/#', qos: 1 }] }),
    publish({ topic: 'devices/d1/t', payload: Buffer.alloc(300, 0x62), qos: 1, messageId: 2 }),
    generate({ cmd: 'pingreq' }),
    generate({ cmd: 'puback', messageId: 40 }),
    publish({ topic: 'devices/d1/é', payload: '', qos: 2, messageId: 3, retain: true }),
    generate({ cmd: 'pubrel', messageId: 3 }),
    generate({ cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['devices/d1/#'] }),
    withRemaining(20_000),
    generate({ cmd: 'disconnect' }),
  ]);

  it('emits what mqtt-packet emits for a whole session read in one piece', () => {
    const before = publishesReadHere();
    const acksBefore = acknowledgementsRead();
    const { packets, errors } = readAsAedes([session]);
    expect(errors).toEqual([]);
    expect(packets.map((p) => p.cmd)).toEqual(['connect', 'publish', 'subscribe', 'publish', 'pingreq', 'puback', 'publish', 'pubrel', 'unsubscribe', 'publish', 'disconnect']);
    expect(plain(packets)).toEqual(plain(referenceRead(session).packets));
    expect(publishesReadHere()).toBe(before + 4);
    expect(acknowledgementsRead()).toBe(acksBefore + 2);
  });

  it.each([1, 2, 3, 7, 100, 4_096])('emits the same when the session arrives in %i-byte reads', (size) => {
    const pieces: Buffer[] = [];
    for (let at = 0; at < session.length; at += size) pieces.push(session.subarray(at, at + size));
    const { packets, errors } = readAsAedes(pieces);
    expect(errors).toEqual([]);
    expect(plain(packets)).toEqual(plain(referenceRead(session).packets));
  });

  it('copies a packet that spans reads, so a reused read buffer cannot change it', () => {
    const one = publish({ topic: 'devices/d1/t', payload: 'intact' });
    const first = Buffer.from(connect4);
    const tail = Buffer.concat([Buffer.from(one.subarray(0, 8))]);
    const p = aedesMqttPacket.parser();
    p.client = { conn: guardConnection(new PassThrough(), testGuard()) };
    const packets: Packet[] = [];
    p.on('packet', (packet) => packets.push(packet));
    p.parse(first);
    expect(p.parse(tail)).toBe(8);
    tail.fill(0);
    expect(p.parse(Buffer.from(one.subarray(8)))).toBe(0);
    expect(packets[1]).toMatchObject({ cmd: 'publish', topic: 'devices/d1/t' });
    expect((packets[1] as { payload: Buffer }).payload.toString()).toBe('intact');
  });

  it('keeps the order when a handler reads again from inside the packet event, as Aedes may', () => {
    const p = aedesMqttPacket.parser();
    p.client = { conn: guardConnection(new PassThrough(), testGuard()) };
    const topics: string[] = [];
    let nested = false;
    p.on('packet', (packet) => {
      if (packet.cmd !== 'publish') return;
      topics.push(packet.topic);
      if (!nested) {
        nested = true;
        p.parse(publish({ topic: 'devices/d1/3', payload: 'x' }));
        topics.push('returned');
      }
    });
    p.parse(Buffer.concat([connect4, publish({ topic: 'devices/d1/1', payload: 'x' }), publish({ topic: 'devices/d1/2', payload: 'x' })]));
    expect(topics).toEqual(['devices/d1/1', 'returned', 'devices/d1/2', 'devices/d1/3']);
  });

  const malformed: [string, Buffer, string][] = [
    ['a QoS 3 PUBLISH', Buffer.from([0x36, 0x05, 0x00, 0x01, 0x74, 0x00, 0x01]), 'Packet must not have both QoS bits set to 1'],
    ['a PUBLISH whose topic runs past the packet', Buffer.from([0x30, 0x04, 0x00, 0x05, 0x74, 0x74]), 'Cannot parse topic'],
    ['a SUBSCRIBE with reserved flags clear', Buffer.from([0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x74, 0x00]), 'Invalid header flag bits, must be 0x2 for subscribe packet'],
    ['a Remaining Length longer than four bytes (which the connection guard cuts first)', Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), 'Invalid variable byte integer'],
  ];
  it.each(malformed)('fails on %s with mqtt-packet\'s error, and emits nothing after it', (_name, bad, message) => {
    const after = publish({ topic: 'devices/d1/after', payload: 'x' });
    const { packets, errors } = readAsAedes([Buffer.concat([connect4, bad, after])]);
    expect(errors).toEqual([message]);
    expect(referenceRead(Buffer.concat([connect4, bad])).error).toBe(message);
    expect(packets.map((p) => p.cmd)).toEqual(['connect']);
  });

  it('fails on a QoS 1 PUBLISH with no room for its packet identifier, where mqtt-packet would read it from the next packet', () => {
    const truncated = Buffer.from([0x32, 0x03, 0x00, 0x01, 0x74]);
    const { packets, errors } = readAsAedes([Buffer.concat([connect4, truncated, generate({ cmd: 'pingreq' })])]);
    expect(errors).toEqual(['Cannot parse messageId']);
    expect(packets.map((p) => p.cmd)).toEqual(['connect']);
  });

  it('leaves unguarded connections and MQTT 5 sessions to mqtt-packet', () => {
    const before = publishesReadHere();
    const unguarded = readAsAedes([session], false);
    expect(plain(unguarded.packets)).toEqual(plain(referenceRead(session).packets));
    const v5 = Buffer.concat([
      generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: 'd1', keepalive: 30 }),
      generate({ cmd: 'publish', topic: 'devices/d1/t', payload: Buffer.from('v5'), qos: 1, messageId: 5, retain: false, dup: false, properties: { contentType: 'text/plain' } }, { protocolVersion: 5 }),
    ]);
    const acksBefore = acknowledgementsRead();
    const five = readAsAedes([Buffer.concat([v5, generate({ cmd: 'puback', messageId: 7, reasonCode: 16 }, { protocolVersion: 5 })])]);
    expect(five.errors).toEqual([]);
    expect(five.packets[1]).toMatchObject({ cmd: 'publish', topic: 'devices/d1/t', properties: { contentType: 'text/plain' } });
    expect(five.packets[2]).toMatchObject({ cmd: 'puback', messageId: 7, reasonCode: 16 });
    expect(publishesReadHere()).toBe(before);
    expect(acknowledgementsRead()).toBe(acksBefore);
  });

  it('is installed once', () => {
    const installed = aedesMqttPacket.parser;
    installPublishReader();
    expect(aedesMqttPacket.parser).toBe(installed);
  });

  let cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanup) c();
    cleanup = [];
  });

  it('is what Aedes reads its clients\' PUBLISH packets and PUBACKs with, at QoS 0 and QoS 1', async () => {
    const broker = await guardedAedes();
    cleanup.push(broker.close);
    const before = publishesReadHere();
    const acksBefore = acknowledgementsRead();
    await relayQoS0AndQoS1(broker);
    expect(publishesReadHere()).toBe(before + 2);
    expect(acknowledgementsRead()).toBe(acksBefore + 1);
  });
});
