import { once } from 'node:events';
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import { generate, type Packet } from 'mqtt-packet';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { guardConnection } from '../server/connection-guard.js';
import { guardedAedes, loopbackPair, relayQoS0AndQoS1, testGuard } from '../server/loopback-pair.fixture.js';
import type { PublishFields } from '../wire/publish-writer.js';
import { acknowledgementsEncoded, installPublishWriter, publishesEncodedHere } from './mqtt-packet-writer.js';

type WriteToStream = ((packet: object, stream: Writable, opts?: unknown) => boolean) & { cacheNumbers: boolean };
/** The copy of mqtt-packet Aedes loads: the one installPublishWriter changes. */
const aedesMqttPacket = createRequire(import.meta.resolve('aedes'))('mqtt-packet') as { writeToStream: WriteToStream };

/** What mqtt-packet itself encodes for the same packet (protocol level 4, as Aedes asks). */
function reference(packet: PublishFields): Buffer {
  return generate(packet as Packet);
}

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup) c();
  cleanup = [];
});

/** A real loopback TCP pair: the accepted side (guarded or not), and what its peer receives. */
async function pair(guarded: boolean) {
  const { client, socket, close } = await loopbackPair();
  cleanup.push(close);
  const stream = guarded ? guardConnection(socket, testGuard()) : socket;
  const received: Buffer[] = [];
  client.on('data', (c: Buffer) => received.push(c));
  const receivedBytes = async (length: number) => {
    while (Buffer.concat(received).length < length) await once(client, 'data');
    return Buffer.concat(received);
  };
  return { stream, receivedBytes };
}

describe('installPublishWriter', () => {
  beforeAll(() => installPublishWriter());

  it('writes a PUBLISH to a guarded connection as one buffer, the bytes mqtt-packet would have sent', async () => {
    const { stream, receivedBytes } = await pair(true);
    const writes: unknown[] = [];
    const write = stream.write.bind(stream);
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      writes.push(chunk);
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof stream.write;
    const packet = { cmd: 'publish', topic: 'devices/d1/t', payload: Buffer.from('hello'), qos: 1, messageId: 3 };
    const before = publishesEncodedHere();
    expect(aedesMqttPacket.writeToStream(packet, stream)).toBe(true);
    expect(writes).toHaveLength(1);
    expect(publishesEncodedHere()).toBe(before + 1);
    const expected = reference(packet);
    expect((await receivedBytes(expected.length)).equals(expected)).toBe(true);
  });

  it('leaves every other packet, unguarded streams and calls with options to mqtt-packet', async () => {
    const guarded = await pair(true);
    const plain = await pair(false);
    const publish = { cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 0 };
    const suback = { cmd: 'suback', messageId: 5, granted: [1] };
    const puback = { cmd: 'puback', messageId: 6 };
    const before = publishesEncodedHere();
    const acksBefore = acknowledgementsEncoded();
    aedesMqttPacket.writeToStream(suback, guarded.stream);
    aedesMqttPacket.writeToStream(publish, plain.stream);
    aedesMqttPacket.writeToStream(puback, plain.stream);
    aedesMqttPacket.writeToStream(publish, guarded.stream, { protocolVersion: 5 });
    aedesMqttPacket.writeToStream(puback, guarded.stream, { protocolVersion: 5 });
    expect(publishesEncodedHere()).toBe(before);
    expect(acknowledgementsEncoded()).toBe(acksBefore);
    const fromGuarded = Buffer.concat([generate(suback as Packet), generate(publish as Packet, { protocolVersion: 5 }), generate(puback as Packet, { protocolVersion: 5 })]);
    expect((await guarded.receivedBytes(fromGuarded.length)).equals(fromGuarded)).toBe(true);
    const fromPlain = Buffer.concat([reference(publish), reference(puback)]);
    expect((await plain.receivedBytes(fromPlain.length)).equals(fromPlain)).toBe(true);
  });

  it('is installed once, and passes mqtt-packet\'s number-cache switch through', () => {
    const installed = aedesMqttPacket.writeToStream;
    installPublishWriter();
    expect(aedesMqttPacket.writeToStream).toBe(installed);
    const was = installed.cacheNumbers;
    try {
      installed.cacheNumbers = !was;
      expect(installed.cacheNumbers).toBe(!was);
    } finally {
      installed.cacheNumbers = was;
    }
    expect(installed.cacheNumbers).toBe(was);
  });

  it('is what Aedes writes its deliveries and PUBACKs with, at QoS 0 and QoS 1', async () => {
    const broker = await guardedAedes();
    cleanup.push(broker.close);
    const before = publishesEncodedHere();
    const acksBefore = acknowledgementsEncoded();
    await relayQoS0AndQoS1(broker);
    expect(publishesEncodedHere()).toBe(before + 2);
    expect(acknowledgementsEncoded()).toBe(acksBefore + 1);
  });
});
