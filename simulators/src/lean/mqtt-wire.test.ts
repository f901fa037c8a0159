import { describe, expect, it } from 'vitest';
import { connectPacket, FrameReader, publishPacket, withDup, type Frame } from './mqtt-wire.js';

function frames(reader: FrameReader, ...chunks: Buffer[]): Frame[] {
  const out: Frame[] = [];
  for (const c of chunks) reader.push(c, (f) => out.push({ ...f, body: Buffer.from(f.body) }));
  return out;
}

describe('lean MQTT wire', () => {
  it('encodes CONNECT as MQTT 3.1.1 with the client id, keepalive and clean session', () => {
    const p = connectPacket('dev-1', 60, true);
    expect([...p.subarray(0, 14)]).toEqual([0x10, 17, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 60, 0, 5]);
    expect(p.subarray(14).toString()).toBe('dev-1');
  });

  it('encodes PUBLISH QoS 1 with a two-byte Remaining Length, and DUP on redelivery', () => {
    const payload = Buffer.alloc(200, 0x61);
    const p = publishPacket('devices/d/telemetry', payload, 1, 513);
    expect(p[0]).toBe(0x32);
    // 2 + 19 topic + 2 packet id + 200 = 223 → 0xdf 0x01
    expect([p[1], p[2]]).toEqual([0xdf, 0x01]);
    expect(p.readUInt16BE(3 + 2 + 19)).toBe(513);
    expect(withDup(p)[0]).toBe(0x3a);
    expect(publishPacket('t', Buffer.from('x'), 0, 7)).toEqual(Buffer.from([0x30, 4, 0, 1, 0x74, 0x78]));
  });

  it('reads packets split across chunks and several packets in one chunk', () => {
    const reader = new FrameReader();
    const stream = Buffer.concat([Buffer.from([0x20, 2, 0, 0]), Buffer.from([0x40, 2, 1, 1]), publishPacket('t', Buffer.alloc(300), 1, 9), Buffer.from([0xd0, 0])]);
    const got = frames(reader, stream.subarray(0, 3), stream.subarray(3, 9), stream.subarray(9, 11), stream.subarray(11));
    expect(got.map((f) => [f.type, f.flags, f.body.length])).toEqual([
      [2, 0, 2],
      [4, 0, 2],
      [3, 2, 305],
      [13, 0, 0],
    ]);
  });

  it('refuses a Remaining Length over four bytes and a packet bigger than it expects', () => {
    expect(() => frames(new FrameReader(), Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toThrow(/malformed Remaining Length/);
    expect(() => frames(new FrameReader(100), Buffer.from([0x30, 0xc8, 0x01]))).toThrow(/more than a device expects/);
  });
});
