import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { generate, parser as mqttParser, type Packet } from 'mqtt-packet';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyMutations, mutations, pieces, settle } from '../../../common/src/test-arbitraries.fixture.js';
import { aedesMqttPacket, type AedesParser } from './aedes-parser.fixture.js';
import { ConnectionGuard, guardConnection, type FrameViolation } from '../server/connection-guard.js';
import { testGuard, testPeer } from '../server/loopback-pair.fixture.js';
import { readPublish } from '../wire/publish-reader.js';
import { installPublishReader } from './mqtt-packet-parser.js';

// The reference is mqtt-packet 9's own parser (what Aedes read before the publish reader),
// fed the same bytes in one piece; for the connection guard's fixed-header walk, MQTT 3.1.1
// §2.2.3 read afresh, and mqtt-packet's lengths on well-formed streams.


type Event = { packet: unknown } | { error: string };

/** A packet as plain data (payload as base64), so that mqtt-packet's objects and ours compare. */
function plain(p: Packet): unknown {
  const payload = (p as { payload?: unknown }).payload;
  return JSON.parse(JSON.stringify({ ...p, payload: Buffer.isBuffer(payload) ? payload.toString('base64') : payload }));
}

/** Events up to and including the first error: after one, Aedes closes the connection. */
function untilError(events: Event[]): Event[] {
  const i = events.findIndex((e) => 'error' in e);
  return i === -1 ? events : events.slice(0, i + 1);
}

function listen(p: { on: AedesParser['on'] }): Event[] {
  const events: Event[] = [];
  p.on('packet', (packet) => events.push({ packet: plain(packet) }));
  p.on('error', (e) => events.push({ error: e.message }));
  return events;
}

/** mqtt-packet's own parser, the whole stream in one piece. */
function reference(stream: Buffer): Event[] {
  const p = mqttParser();
  const events = listen(p as unknown as AedesParser);
  p.parse(stream);
  return untilError(events);
}

/** A parser as Aedes makes one on a guarded connection, the stream in the given pieces. */
function ours(stream: Buffer, cuts: number[]): Event[] {
  const p = aedesMqttPacket.parser();
  p.client = { conn: guardConnection(new PassThrough(), testGuard()) };
  const events = listen(p);
  const read = settle(() => {
    for (const piece of pieces(stream, cuts)) p.parse(piece);
  }, () => false);
  if (!read.ok) throw read.error;
  return untilError(events);
}

/** MQTT 3.1.1 §2.2.3: the fixed header at buf[start]; undefined while incomplete, 'malformed' past four length bytes. */
function fixedHeader(buf: Buffer, start: number): { headerBytes: number; remaining: number } | undefined | 'malformed' {
  let remaining = 0;
  for (let i = 1; i <= 4; i++) {
    if (start + i >= buf.length) return undefined;
    const byte = buf[start + i] as number;
    remaining += (byte & 0x7f) * 128 ** (i - 1);
    if ((byte & 0x80) === 0) return { headerBytes: 1 + i, remaining };
  }
  return 'malformed';
}

const topic = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.constantFrom('devices/d1/t', 'a/b', '', '$SYS/x', 'devices/dé/温度/🌡'));
const payload = fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ minLength: 120, maxLength: 20_000 }));
const publish = fc.record({ topic, payload, qos: fc.constantFrom(0, 1, 2), retain: fc.boolean(), dup: fc.boolean(), messageId: fc.integer({ min: 1, max: 65_535 }) }).map((p) => ({
  ...p,
  payload: Buffer.from(p.payload),
  bytes: generate({ cmd: 'publish', topic: p.topic, payload: Buffer.from(p.payload), qos: p.qos as 0 | 1 | 2, retain: p.retain, dup: p.dup, messageId: p.messageId } as Packet),
}));

const messageId = fc.integer({ min: 0, max: 65_535 });
/** Every kind of packet a device sends after CONNECT. */
const clientPacket: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 6, arbitrary: publish.map((p) => p.bytes) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom('puback', 'pubrec', 'pubrel', 'pubcomp'), messageId).map(([cmd, id]) => generate({ cmd, messageId: id } as Packet)) },
  { weight: 1, arbitrary: fc.constantFrom(generate({ cmd: 'pingreq' }), generate({ cmd: 'disconnect' })) },
  { weight: 1, arbitrary: fc.tuple(messageId.filter((id) => id > 0), fc.string({ minLength: 1, maxLength: 20 })).map(([id, filter]) => generate({ cmd: 'subscribe', messageId: id, subscriptions: [{ topic: filter, qos: 1 }] } as Packet)) },
  { weight: 1, arbitrary: fc.tuple(messageId.filter((id) => id > 0), fc.string({ minLength: 1, maxLength: 20 })).map(([id, filter]) => generate({ cmd: 'unsubscribe', messageId: id, unsubscriptions: [filter] } as Packet)) },
);
const connect = fc.constantFrom(
  generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'd1', keepalive: 30 }),
  generate({ cmd: 'connect', protocolId: 'MQIsdp', protocolVersion: 3, clean: true, clientId: 'd1', keepalive: 30 }),
);
const session = fc.tuple(connect, fc.array(clientPacket, { minLength: 1, maxLength: 8 })).map(([c, rest]) => ({ connect: c, packets: rest, body: Buffer.concat(rest) }));

/** MQTT's length fields: a packet's Remaining Length (§2.2.3) or the two bytes after its fixed header (a topic's length, §1.5.3, or a packet identifier), off by `delta`. */
const lengthEdit = fc.record({ packet: fc.nat(), field: fc.constantFrom('remaining' as const, 'two-byte' as const), delta: fc.integer({ min: -4, max: 4 }).filter((d) => d !== 0) });

function withLengthEdit(packets: Buffer[], edit: { packet: number; field: 'remaining' | 'two-byte'; delta: number }): Buffer {
  const i = edit.packet % packets.length;
  const packet = packets[i] as Buffer;
  const header = fixedHeader(packet, 0) as { headerBytes: number; remaining: number };
  let edited: Buffer;
  if (edit.field === 'remaining') {
    const length: number[] = [];
    let x = Math.max(0, header.remaining + edit.delta);
    do {
      length.push((x % 128) | (x >= 128 ? 0x80 : 0));
      x = Math.floor(x / 128);
    } while (x > 0);
    edited = Buffer.concat([packet.subarray(0, 1), Buffer.from(length), packet.subarray(header.headerBytes)]);
  } else {
    edited = Buffer.from(packet);
    if (header.remaining >= 2) edited.writeUInt16BE((edited.readUInt16BE(header.headerBytes) + edit.delta + 0x10000) % 0x10000, header.headerBytes);
  }
  return Buffer.concat(packets.map((p, j) => (j === i ? edited : p)));
}
const cuts = fc.array(fc.nat(), { maxLength: 6 });

describe('readPublish, property-based', () => {
  it('reads every PUBLISH mqtt-packet writes as mqtt-packet reads it, wherever it sits in a buffer', () => {
    fc.assert(
      fc.property(publish, fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (p, before, after) => {
        const expected = reference(p.bytes);
        expect(expected).toHaveLength(1);
        const packet = (expected[0] as { packet: { length: number } }).packet;
        expect(packet).toMatchObject({ cmd: 'publish', qos: p.qos, retain: p.retain, dup: p.dup, payload: p.payload.toString('base64') });
        const buf = Buffer.concat([before, p.bytes, after]);
        const got = readPublish(buf, before.length, before.length + p.bytes.length, p.bytes.length - packet.length);
        expect(typeof got === 'object' && plain(got as unknown as Packet)).toEqual(packet);
      }),
      { numRuns: 500 },
    );
  });
});

describe('installPublishReader, property-based', () => {
  beforeAll(() => installPublishReader());

  it('emits what mqtt-packet emits for every session a device sends, in any split into reads', () => {
    fc.assert(
      fc.property(session, cuts, ({ connect: c, body }, at) => {
        const stream = Buffer.concat([c, body]);
        const expected = reference(stream);
        expect(expected.some((e) => 'error' in e)).toBe(false);
        expect(ours(stream, at)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('emits what mqtt-packet emits for mutated sessions, packet by packet, up to the first error, never throwing or hanging', () => {
    let sameAsWhole = 0;
    fc.assert(
      fc.property(session, fc.option(lengthEdit, { nil: undefined }), mutations(2, 0), cuts, ({ connect: c, packets, body }, length, edits, at) => {
        fc.pre(length !== undefined || edits.length > 0);
        const stream = Buffer.concat([c, applyMutations(length ? withLengthEdit(packets, length) : body, edits)]);
        const got = ours(stream, at);
        expect(got).toEqual(referenceByPacket(stream));
        if (isEqual(got, reference(stream))) sameAsWhole++;
      }),
      { numRuns: 800 },
    );
    expect(sameAsWhole).toBeGreaterThan(0);
  });
});

/**
 * mqtt-packet handed one whole packet at a time (§2.2.3 framing), as the publish reader hands
 * it every packet it does not read itself. Fed a whole stream at once, mqtt-packet differs in
 * two ways, both its own: it takes a packet's fields from the bytes after it when its Remaining
 * Length is too short for them (a PUBREC of length 0 gets its identifier from the next packet),
 * and it refuses a packet by its first byte before the rest has arrived. A packet that has not
 * arrived whole is held, not handed on; a Remaining Length past four bytes goes to mqtt-packet.
 */
function referenceByPacket(stream: Buffer): Event[] {
  const p = mqttParser();
  const events = listen(p as unknown as AedesParser);
  for (let at = 0; at < stream.length && !events.some((e) => 'error' in e); ) {
    const header = fixedHeader(stream, at);
    if (header === undefined) break;
    const end = header === 'malformed' ? stream.length : at + header.headerBytes + header.remaining;
    if (end > stream.length) break;
    p.parse(stream.subarray(at, end));
    at = end;
  }
  // Where mqtt-packet, handed a QoS 1 or 2 PUBLISH with no room for its identifier, emits it with
  // messageId -1, the publish reader refuses it (readPublish's 'no_identifier').
  const i = events.findIndex((e) => 'packet' in e && (e.packet as { cmd: string; messageId?: number }).cmd === 'publish' && (e.packet as { messageId?: number }).messageId === -1);
  if (i !== -1) return [...events.slice(0, i), { error: 'Cannot parse messageId' }];
  return untilError(events);
}

function isEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

describe('ConnectionGuard, property-based', () => {
  /** §2.2.3 read afresh: the first violation in `stream` and the byte it shows at, with packets capped at `max` bytes. */
  function expectedViolation(stream: Buffer, max: number): { violation: FrameViolation; at: number } | undefined {
    for (let at = 0; at < stream.length; ) {
      let length = 0;
      let n = 0;
      for (;;) {
        n++;
        if (at + n >= stream.length) return undefined;
        const byte = stream[at + n] as number;
        length += (byte & 0x7f) * 128 ** (n - 1);
        if ((byte & 0x80) === 0) break;
        if (n === 4) return { violation: 'malformed_length', at: at + n };
      }
      if (1 + n + length > max) return { violation: 'packet_too_large', at: at + n };
      at += 1 + n + length;
    }
    return undefined;
  }

  /** The guard's verdict on `stream` read in pieces: the violation and the piece it came with. */
  function guardVerdict(stream: Buffer, at: number[], max: number): { violation: FrameViolation; piece: number } | undefined {
    const seen: FrameViolation[] = [];
    const guard = new ConnectionGuard(testPeer, { maxPacketBytes: max, onViolation: (v) => seen.push(v), tally: { in: 0, out: 0 } });
    const parts = pieces(stream, at);
    for (let i = 0; i < parts.length; i++) {
      const admitted = settle(() => guard.admit(parts[i] as Buffer), () => false);
      if (!admitted.ok) throw admitted.error;
      if (!admitted.value) {
        expect(seen).toHaveLength(1);
        return { violation: seen[0] as FrameViolation, piece: i };
      }
    }
    expect(seen).toEqual([]);
    return undefined;
  }

  function pieceOf(stream: Buffer, at: number[], byte: number): number {
    return pieces(stream, at).findIndex((_, i, all) => all.slice(0, i + 1).reduce((n, p) => n + p.length, 0) > byte);
  }

  it('finds the packet lengths mqtt-packet finds in well-formed sessions, and cuts at the first packet over the cap', () => {
    fc.assert(
      fc.property(session, cuts, fc.integer({ min: 2, max: 25_000 }), ({ connect: c, body }, at, max) => {
        const stream = Buffer.concat([c, body]);
        // mqtt-packet's lengths: each packet's Remaining Length plus its fixed header.
        const sizes: number[] = [];
        const p = mqttParser();
        p.on('packet', (packet: Packet) => sizes.push((packet as { length: number }).length));
        p.parse(stream);
        const totals = sizes.map((l) => 1 + (l < 128 ? 1 : l < 16_384 ? 2 : l < 2_097_152 ? 3 : 4) + l);
        expect(totals.reduce((a, b) => a + b, 0)).toBe(stream.length);
        const over = totals.findIndex((t) => t > max);
        const verdict = guardVerdict(stream, at, max);
        if (over === -1) {
          expect(verdict).toBeUndefined();
        } else {
          const start = totals.slice(0, over).reduce((a, b) => a + b, 0);
          const lastLengthByte = start + (totals[over] as number) - (sizes[over] as number) - 1;
          expect(verdict).toEqual({ violation: 'packet_too_large', piece: pieceOf(stream, at, lastLengthByte) });
        }
      }),
      { numRuns: 400 },
    );
  });

  it('reports exactly the first violation §2.2.3 finds in mutated or random streams, at the read that shows it', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.tuple(session, mutations(3)).map(([{ connect: c, body }, edits]) => applyMutations(Buffer.concat([c, body]), edits)),
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
          fc.array(fc.constantFrom(0x30, 0x80, 0xff, 0x7f, 0x00, 0x01), { maxLength: 40 }).map((b) => Buffer.from(b)),
        ),
        cuts,
        fc.integer({ min: 2, max: 30_000 }),
        (stream, at, max) => {
          const expected = expectedViolation(stream, max);
          expect(guardVerdict(stream, at, max)).toEqual(expected && { violation: expected.violation, piece: pieceOf(stream, at, expected.at) });
        },
      ),
      { numRuns: 800 },
    );
  });
});
