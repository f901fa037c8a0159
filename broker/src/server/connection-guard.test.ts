import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionGuard, guardConnection, guardOf, type ByteTally, type FrameViolation } from './connection-guard.js';
import { loopbackPair, testPeer } from './loopback-pair.fixture.js';

/** A PUBLISH (QoS 0) with `bodyBytes` of topic + payload, Remaining Length encoded per MQTT 3.1.1 §2.2.3. */
function publish(bodyBytes: number): Buffer {
  const topic = Buffer.from('\u0000\u0001t');
  const payload = Buffer.alloc(Math.max(0, bodyBytes - topic.length), 0x61);
  const len: number[] = [];
  let x = topic.length + payload.length;
  do {
    let b = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) b |= 0x80;
    len.push(b);
  } while (x > 0);
  return Buffer.concat([Buffer.from([0x30, ...len]), topic, payload]);
}

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup) c();
  cleanup = [];
});

/** A real loopback TCP pair; the server side is guarded, as the broker guards its TLS sockets. */
async function pair(maxPacketBytes: number) {
  const { client, socket, close } = await loopbackPair();
  cleanup.push(close);
  const violations: FrameViolation[] = [];
  const tally: ByteTally = { in: 0, out: 0 };
  const guarded = guardConnection(socket, new ConnectionGuard(testPeer, { maxPacketBytes, onViolation: (v) => violations.push(v), tally }));
  guarded.on('error', () => undefined);
  const received: Buffer[] = [];
  guarded.on('data', (c: Buffer) => received.push(c));
  return { client, guarded, violations, tally, received: () => Buffer.concat(received) };
}

describe('guardConnection', () => {
  it('passes packets through byte for byte, even when they arrive one byte at a time', async () => {
    const { client, guarded, violations, tally, received } = await pair(1024);
    const stream = Buffer.concat([publish(10), Buffer.from([0xc0, 0x00]), publish(1000), publish(200)]);
    for (const byte of stream) {
      client.write(Buffer.from([byte]));
      await new Promise((r) => setImmediate(r));
    }
    client.end();
    await once(guarded, 'end');
    expect(received().equals(stream)).toBe(true);
    expect(violations).toEqual([]);
    expect(tally.in).toBe(stream.length);
  });

  it('cuts a connection whose packet announces more than the cap, before its body is read', async () => {
    const { client, guarded, violations, received } = await pair(64 * 1024);
    const big = publish(1024 * 1024);
    client.write(big.subarray(0, 4)); // the fixed header alone announces 1 MiB
    await once(guarded, 'close');
    expect(violations).toEqual(['packet_too_large']);
    expect(received().length).toBe(0);
  });

  it('accepts a packet of exactly the cap and refuses one byte more', async () => {
    const exact = publish(100);
    const a = await pair(exact.length);
    a.client.end(exact);
    await once(a.guarded, 'end');
    expect(a.violations).toEqual([]);
    const b = await pair(exact.length - 1);
    b.client.write(exact);
    await once(b.guarded, 'close');
    expect(b.violations).toEqual(['packet_too_large']);
  });

  it('cuts a Remaining Length longer than four bytes as malformed (MQTT 3.1.1 §2.2.3)', async () => {
    const { client, guarded, violations } = await pair(1024);
    client.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
    await once(guarded, 'close');
    expect(violations).toEqual(['malformed_length']);
  });

  it('sends writes made in one turn of the event loop together, in order, and counts them', async () => {
    const { client, guarded, tally } = await pair(1024);
    const chunks: Buffer[] = [];
    client.on('data', (c: Buffer) => chunks.push(c));
    const packets = [publish(10), publish(20), publish(30)];
    for (const p of packets) guarded.write(p);
    guarded.end();
    await once(client, 'end');
    expect(Buffer.concat(chunks).equals(Buffer.concat(packets))).toBe(true);
    expect(chunks.length).toBe(1);
    expect(tally.out).toBe(Buffer.concat(packets).length);
  });

  it('answers false past the high-water mark and emits drain once the gathered writes have gone', async () => {
    const { client, guarded, tally } = await pair(1024);
    let received = 0;
    client.on('data', (c: Buffer) => (received += c.length));
    const big = Buffer.alloc(guarded.writableHighWaterMark, 0x61);
    expect(guarded.write(publish(10))).toBe(true);
    expect(guarded.write(big)).toBe(false);
    await once(guarded, 'drain');
    expect(tally.out).toBe(publish(10).length + big.length);
    guarded.end();
    await once(client, 'end');
    expect(received).toBe(publish(10).length + big.length);
  });

  it('calls write callbacks after their bytes went out, and reports writes after end as Writable does', async () => {
    const { client, guarded } = await pair(1024);
    client.resume();
    const calls: string[] = [];
    guarded.write(publish(10), () => calls.push('first'));
    guarded.write('text', 'utf8', () => calls.push('second'));
    guarded.end();
    const error = new Promise<Error | null | undefined>((resolve) => guarded.write(publish(5), resolve));
    guarded.on('error', () => undefined);
    expect((await error)?.message).toMatch(/write after end/);
    client.on('error', () => undefined);
    if (!client.closed) await once(client, 'close');
    expect(calls).toEqual(['first', 'second']);
  });

  it('drops what was gathered when the connection is destroyed before the flush', async () => {
    const { client, guarded } = await pair(1024);
    const errors: (Error | null | undefined)[] = [];
    guarded.write(publish(10), (err) => errors.push(err));
    guarded.destroy();
    await once(client, 'close');
    await new Promise((r) => setImmediate(r));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(Error);
  });

  it('finds the guard of a guarded connection and none on anything else', async () => {
    const { guarded } = await pair(1024);
    expect(guardOf(guarded)?.peer).toBe(testPeer);
    expect(guardOf({})).toBeUndefined();
    expect(guardOf(null)).toBeUndefined();
  });
});
