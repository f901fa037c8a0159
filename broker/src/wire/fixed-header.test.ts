import { describe, expect, it } from 'vitest';
import { LengthState, MAX_REMAINING_LENGTH, readFixedHeader, RemainingLengthDecoder, type FixedHeader } from './fixed-header.js';

/** §2.2.3's encoding of `n`, written out independently of the decoder. */
function encode(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

const fresh = (): FixedHeader => ({ headerBytes: -1, remainingLength: -1, minimal: false });

describe('readFixedHeader', () => {
  it.each([0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, MAX_REMAINING_LENGTH])('reads a Remaining Length of %i at any offset', (n) => {
    const buf = Buffer.from([9, 9, 0x30, ...encode(n), 7]);
    const out = fresh();
    expect(readFixedHeader(buf, 2, out)).toBe(LengthState.Done);
    expect(out).toEqual({ headerBytes: 1 + encode(n).length, remainingLength: n, minimal: true });
  });

  it('answers More while the header is cut short, Malformed past four length bytes', () => {
    const out = fresh();
    expect(readFixedHeader(Buffer.from([0x30]), 0, out)).toBe(LengthState.More);
    expect(readFixedHeader(Buffer.from([0x30, 0x80, 0x80]), 0, out)).toBe(LengthState.More);
    expect(readFixedHeader(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), 0, out)).toBe(LengthState.Malformed);
    expect(out.headerBytes).toBe(-1);
  });

  it('reads a longer encoding than needed, and says so', () => {
    const out = fresh();
    expect(readFixedHeader(Buffer.from([0x30, 0x85, 0x00]), 0, out)).toBe(LengthState.Done);
    expect(out).toEqual({ headerBytes: 3, remainingLength: 5, minimal: false });
  });
});

describe('RemainingLengthDecoder', () => {
  it('reads byte by byte what readFixedHeader reads from a buffer', () => {
    const decoder = new RemainingLengthDecoder();
    for (const n of [0, 321, 2_097_152, MAX_REMAINING_LENGTH]) {
      decoder.reset();
      const bytes = encode(n);
      const states = bytes.map((b) => decoder.next(b));
      expect(states.at(-1)).toBe(LengthState.Done);
      expect(states.slice(0, -1).every((s) => s === LengthState.More)).toBe(true);
      expect([decoder.value, decoder.bytes]).toEqual([n, bytes.length]);
    }
    decoder.reset();
    expect([0x80, 0x80, 0x80, 0x80].map((b) => decoder.next(b))).toEqual([LengthState.More, LengthState.More, LengthState.More, LengthState.Malformed]);
  });
});
