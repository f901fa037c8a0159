import { generate, parser as mqttParser, type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { encodeAcknowledgement, encodePublish, type PublishFields } from './publish-writer.js';

/** What mqtt-packet itself encodes for the same packet (protocol level 4, as Aedes asks). */
function reference(packet: PublishFields): Buffer {
  return generate(packet as Packet);
}

/** A payload that brings the packet's Remaining Length to exactly `remaining` (topic 't', QoS 0). */
function withRemaining(remaining: number): PublishFields {
  return { cmd: 'publish', topic: 't', payload: Buffer.alloc(remaining - 3, 0x61), qos: 0 };
}

describe('encodePublish', () => {
  const cases: [string, PublishFields][] = [
    ['QoS 0', { cmd: 'publish', topic: 'devices/d1/t', payload: Buffer.from('hello'), qos: 0 }],
    ['QoS 0 with no qos field', { cmd: 'publish', topic: 'devices/d1/t', payload: Buffer.from('x') }],
    ['QoS 1, identifier 1', { cmd: 'publish', topic: 'devices/d1/t', payload: Buffer.from('hello'), qos: 1, messageId: 1 }],
    ['QoS 1, identifier 65535', { cmd: 'publish', topic: 'a', payload: Buffer.from('z'), qos: 1, messageId: 65_535 }],
    ['QoS 2, identifier 0x0102', { cmd: 'publish', topic: 'a/b', payload: Buffer.from('z'), qos: 2, messageId: 0x0102 }],
    ['DUP and RETAIN', { cmd: 'publish', topic: 'a/b', payload: Buffer.from('z'), qos: 1, messageId: 7, dup: true, retain: true }],
    ['RETAIN alone', { cmd: 'publish', topic: 'a/b', payload: Buffer.from('z'), qos: 0, retain: true }],
    ['multi-byte UTF-8 topic', { cmd: 'publish', topic: 'devices/dé/温度/🌡', payload: Buffer.from([0, 1, 2]), qos: 0 }],
    ['a lone surrogate in topic and payload (U+FFFD, as Buffer.from writes it)', { cmd: 'publish', topic: 'a\uD800b', payload: 'x\uDC00', qos: 0 }],
    ['string payload with multi-byte characters', { cmd: 'publish', topic: 't', payload: 'ünïcödé ✓', qos: 1, messageId: 9 }],
    ['empty payload', { cmd: 'publish', topic: 't', payload: Buffer.alloc(0), qos: 0 }],
    ['no payload', { cmd: 'publish', topic: 't', qos: 0 }],
    ['null payload', { cmd: 'publish', topic: 't', payload: null, qos: 0 }],
    ['empty topic (as mqtt-packet writes it)', { cmd: 'publish', topic: '', payload: Buffer.from('x'), qos: 0 }],
    ['Remaining Length 127 (one byte)', withRemaining(127)],
    ['Remaining Length 128 (two bytes)', withRemaining(128)],
    ['Remaining Length 16,383', withRemaining(16_383)],
    ['Remaining Length 16,384 (three bytes)', withRemaining(16_384)],
    ['Remaining Length 2,097,151', withRemaining(2_097_151)],
    ['Remaining Length 2,097,152 (four bytes)', withRemaining(2_097_152)],
  ];
  it.each(cases)('writes %s byte for byte as mqtt-packet does', (_name, packet) => {
    const ours = encodePublish(packet);
    expect(ours).toBeDefined();
    expect((ours as Buffer).equals(reference(packet))).toBe(true);
  });

  it('writes a packet mqtt-packet parses back to the same fields', () => {
    const parsed: Packet[] = [];
    const p = mqttParser();
    p.on('packet', (packet: Packet) => parsed.push(packet));
    p.parse(encodePublish({ cmd: 'publish', topic: 'devices/dé/t', payload: Buffer.from('42'), qos: 1, messageId: 513, retain: true }) as Buffer);
    expect(parsed).toHaveLength(1);
    expect(parsed[0]).toMatchObject({ cmd: 'publish', topic: 'devices/dé/t', qos: 1, messageId: 513, retain: true, dup: false });
    expect((parsed[0] as { payload: Buffer }).payload.toString()).toBe('42');
  });

  const refused: [string, PublishFields][] = [
    ['a Buffer topic', { cmd: 'publish', topic: Buffer.from('t'), payload: Buffer.from('x'), qos: 0 }],
    ['no topic', { cmd: 'publish', payload: Buffer.from('x'), qos: 0 }],
    ['a number topic', { cmd: 'publish', topic: 5, payload: Buffer.from('x'), qos: 0 }],
    ['QoS 3', { cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 3 }],
    ['QoS "1"', { cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: '1', messageId: 1 }],
    ['QoS 1 without an identifier', { cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1 }],
    ['identifier 65536', { cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, messageId: 65_536 }],
    ['identifier -1', { cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 2, messageId: -1 }],
    ['identifier 1.5', { cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, messageId: 1.5 }],
    ['a number payload', { cmd: 'publish', topic: 't', payload: 42, qos: 0 }],
    ['an object payload', { cmd: 'publish', topic: 't', payload: { a: 1 }, qos: 0 }],
    ['a topic over 65,535 bytes', { cmd: 'publish', topic: 'é'.repeat(32_768), payload: Buffer.from('x'), qos: 0 }],
  ];
  it.each(refused)('leaves %s to mqtt-packet', (_name, packet) => {
    expect(encodePublish(packet)).toBeUndefined();
  });

  it('leaves a packet over the largest Remaining Length (268,435,455) to mqtt-packet', () => {
    const payload = Buffer.allocUnsafe(268_435_455 - 3 + 1);
    expect(encodePublish({ cmd: 'publish', topic: 't', payload, qos: 0 })).toBeUndefined();
  });
});

describe('encodeAcknowledgement', () => {
  const cases: [string, PublishFields][] = [
    ['PUBACK 1', { cmd: 'puback', messageId: 1 }],
    ['PUBACK 0', { cmd: 'puback', messageId: 0 }],
    ['PUBACK 65535', { cmd: 'puback', messageId: 65_535 }],
    ['PUBREC', { cmd: 'pubrec', messageId: 300 }],
    ['PUBREL', { cmd: 'pubrel', messageId: 301 }],
    ['PUBACK with DUP (which mqtt-packet leaves out)', { cmd: 'puback', messageId: 3, dup: true }],
    ['PUBCOMP', { cmd: 'pubcomp', messageId: 303 }],
  ];
  it.each(cases)('writes %s byte for byte as mqtt-packet does', (_name, packet) => {
    const ours = encodeAcknowledgement(packet);
    expect(ours).toBeDefined();
    expect((ours as Buffer).equals(reference(packet))).toBe(true);
  });

  it.each([
    ['no identifier', { cmd: 'puback' }],
    ['identifier -1', { cmd: 'puback', messageId: -1 }],
    ['identifier 65536', { cmd: 'pubrec', messageId: 65_536 }],
    ['identifier 1.5', { cmd: 'pubcomp', messageId: 1.5 }],
    ['identifier "1"', { cmd: 'pubrel', messageId: '1' }],
    ['a PUBREL with DUP (which mqtt-packet throws on)', { cmd: 'pubrel', messageId: 302, dup: true }],
    ['a SUBACK', { cmd: 'suback', messageId: 1 }],
    ['a PUBLISH', { cmd: 'publish', messageId: 1, topic: 't', qos: 1 }],
  ] as [string, PublishFields][])('leaves %s to mqtt-packet', (_name, packet) => {
    expect(encodeAcknowledgement(packet)).toBeUndefined();
  });
});
