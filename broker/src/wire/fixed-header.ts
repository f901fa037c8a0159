/**
 * MQTT 3.1.1 §2.2: every packet starts with a fixed header, one byte of packet type and
 * flags, then the Remaining Length (the bytes that follow) in one to four bytes, seven bits
 * each, low first, the top bit set on every byte but the last (§2.2.3). This is the
 * broker's one decoder of it: the connection guard reads it byte by byte across reads
 * (RemainingLengthDecoder), the packet cutter and the publish relay read it from a buffer
 * (readFixedHeader).
 */

/** The largest Remaining Length four bytes can carry. */
export const MAX_REMAINING_LENGTH = 268_435_455;

/**
 * What one length byte leaves the decoder at: More (the top bit was set, another length
 * byte follows), Done (that was the last: `value` is the Remaining Length) or Malformed (a
 * fourth length byte with the top bit set: no valid packet, §2.2.3).
 */
export const LengthState = { More: 0, Done: 1, Malformed: -1 } as const;
export type LengthState = (typeof LengthState)[keyof typeof LengthState];

/** A Remaining Length read one byte at a time, so that a header may span reads. */
export class RemainingLengthDecoder {
  /** The Remaining Length so far; all of it once `next` answered Done. */
  value = 0;
  /** Length bytes taken so far (1–4). */
  bytes = 0;
  /** False when the last byte was a 0 after others: a longer encoding than needed, which §2.2.3 does not forbid. */
  minimal = true;
  private multiplier = 1;

  reset(): void {
    this.value = 0;
    this.bytes = 0;
    this.minimal = true;
    this.multiplier = 1;
  }

  next(byte: number): LengthState {
    this.value += (byte & 0x7f) * this.multiplier;
    this.multiplier *= 128;
    this.bytes++;
    if ((byte & 0x80) === 0) {
      this.minimal = byte !== 0 || this.bytes === 1;
      return LengthState.Done;
    }
    return this.bytes === 4 ? LengthState.Malformed : LengthState.More;
  }
}

/** The fixed header of one packet, as readFixedHeader found it. */
export interface FixedHeader {
  /** The fixed header's own length: the type byte and 1–4 length bytes. */
  headerBytes: number;
  remainingLength: number;
  /** Whether the Remaining Length used the fewest bytes it could. */
  minimal: boolean;
}

const scratch = new RemainingLengthDecoder();

/**
 * Reads the fixed header of the packet at buf[at] into `out`: Done when it is whole,
 * More while buf ends inside it, Malformed when its Remaining Length runs past four bytes.
 * `out` is the caller's, reused from packet to packet.
 */
export function readFixedHeader(buf: Buffer, at: number, out: FixedHeader): LengthState {
  scratch.reset();
  for (let i = at + 1; i < buf.length; i++) {
    const state = scratch.next(buf[i] as number);
    if (state === LengthState.More) continue;
    if (state === LengthState.Malformed) return state;
    out.headerBytes = i - at + 1;
    out.remainingLength = scratch.value;
    out.minimal = scratch.minimal;
    return LengthState.Done;
  }
  return LengthState.More;
}
