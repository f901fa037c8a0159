import { generate, type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { plain, publish, referenceRead, withRemaining } from './mqtt-packet-reference.fixture.js';
import { readAcknowledgement, readPublish } from './publish-reader.js';

describe('readPublish', () => {
  const cases: [string, Buffer][] = [
    ['QoS 0', publish({ topic: 'devices/d1/t', payload: 'hello' })],
    ['QoS 1, identifier 1', publish({ topic: 'devices/d1/t', payload: 'hello', qos: 1, messageId: 1 })],
    ['QoS 2, identifier 65535', publish({ topic: 'a', payload: 'z', qos: 2, messageId: 65_535 })],
    ['DUP and RETAIN', publish({ topic: 'a/b', payload: 'z', qos: 1, messageId: 7, dup: true, retain: true })],
    ['RETAIN alone', publish({ topic: 'a/b', payload: 'z', retain: true })],
    ['DUP at QoS 0 (as mqtt-packet reads it)', Buffer.from([0x38, 0x04, 0x00, 0x01, 0x74, 0x78])],
    ['multi-byte UTF-8 topic', publish({ topic: 'devices/dé/温度/🌡', payload: Buffer.from([0, 1, 2]) })],
    ['a topic that is not UTF-8 (read as U+FFFD, which the ACL refuses)', Buffer.from([0x30, 0x05, 0x00, 0x02, 0xc3, 0x28, 0x78])],
    ['a topic with NUL', publish({ topic: 'devices/d1/\u0000', payload: 'x' })],
    ['an empty topic', publish({ topic: '', payload: 'x' })],
    ['an empty payload', publish({ topic: 't', payload: Buffer.alloc(0) })],
    ['an empty payload at QoS 1', publish({ topic: 't', payload: Buffer.alloc(0), qos: 1, messageId: 2 })],
    ['Remaining Length 127 (one byte)', withRemaining(127)],
    ['Remaining Length 128 (two bytes)', withRemaining(128)],
    ['Remaining Length 16,384 (three bytes)', withRemaining(16_384)],
    ['Remaining Length 2,097,152 (four bytes)', withRemaining(2_097_152)],
  ];
  it.each(cases)('reads %s as mqtt-packet does', (_name, bytes) => {
    const { packets, error } = referenceRead(bytes);
    expect(error).toBeUndefined();
    const headerBytes = bytes.length - (packets[0] as { length: number }).length;
    const ours = readPublish(bytes, 0, bytes.length, headerBytes);
    expect(typeof ours).toBe('object');
    expect(plain([ours as unknown as Packet])).toEqual(plain(packets));
  });

  it('reads a PUBLISH in the middle of a buffer, its payload a view of it', () => {
    const one = publish({ topic: 'a/b', payload: 'mid', qos: 1, messageId: 9 });
    const buf = Buffer.concat([Buffer.from([1, 2, 3]), one, Buffer.from([4])]);
    const ours = readPublish(buf, 3, 3 + one.length, 2);
    expect(ours).toMatchObject({ topic: 'a/b', qos: 1, messageId: 9, length: one.length - 2 });
    const payload = (ours as { payload: Buffer }).payload;
    expect(payload.toString()).toBe('mid');
    expect(payload.buffer).toBe(buf.buffer);
  });

  it('leaves QoS 3 and a topic longer than the packet to mqtt-packet', () => {
    expect(readPublish(Buffer.from([0x36, 0x05, 0x00, 0x01, 0x74, 0x00, 0x01]), 0, 7, 2)).toBeUndefined();
    expect(readPublish(Buffer.from([0x30, 0x04, 0x00, 0x05, 0x74, 0x74]), 0, 6, 2)).toBeUndefined();
    expect(readPublish(Buffer.from([0x30, 0x01, 0x00]), 0, 3, 2)).toBeUndefined();
  });

  it('says when a QoS 1 or 2 PUBLISH has no room for its packet identifier', () => {
    expect(readPublish(Buffer.from([0x32, 0x03, 0x00, 0x01, 0x74]), 0, 5, 2)).toBe('no_identifier');
    expect(readPublish(Buffer.from([0x34, 0x04, 0x00, 0x01, 0x74, 0x01]), 0, 6, 2)).toBe('no_identifier');
  });
});

describe('readAcknowledgement', () => {
  const acks: [string, Buffer][] = [
    ['PUBACK 1', generate({ cmd: 'puback', messageId: 1 })],
    ['PUBACK 65535', generate({ cmd: 'puback', messageId: 65_535 })],
    ['PUBACK 0', generate({ cmd: 'puback', messageId: 0 })],
    ['PUBREC', generate({ cmd: 'pubrec', messageId: 300 })],
    ['PUBREL', generate({ cmd: 'pubrel', messageId: 301 })],
    ['PUBCOMP', generate({ cmd: 'pubcomp', messageId: 302 })],
  ];
  it.each(acks)('reads %s as mqtt-packet does', (_name, bytes) => {
    const { packets, error } = referenceRead(bytes);
    expect(error).toBeUndefined();
    const ours = readAcknowledgement(bytes, 0);
    expect(ours).toBeDefined();
    expect(plain([ours as unknown as Packet])).toEqual(plain(packets));
  });

  it('reads one in the middle of a buffer', () => {
    const buf = Buffer.concat([Buffer.from([9, 9]), generate({ cmd: 'puback', messageId: 0x0102 }), Buffer.from([9])]);
    expect(readAcknowledgement(buf, 2)).toMatchObject({ cmd: 'puback', messageId: 0x0102 });
  });

  it.each([
    ['a PUBREL without its required flags', [0x60, 0x02, 0x00, 0x01]],
    ['a PUBACK with flags set', [0x42, 0x02, 0x00, 0x01]],
    ['a PUBACK with a longer body (MQTT 5 reason code)', [0x40, 0x03, 0x00, 0x01, 0x10]],
    ['a PUBACK with no packet identifier', [0x40, 0x00]],
    ['a PINGREQ', [0xc0, 0x00]],
    ['a SUBACK', [0x90, 0x03, 0x00, 0x01, 0x00]],
  ])('leaves %s to mqtt-packet', (_name, bytes) => {
    const buf = Buffer.from(bytes);
    expect(readAcknowledgement(buf, 0)).toBeUndefined();
  });
});
