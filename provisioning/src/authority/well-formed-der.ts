/**
 * Whether buf[from, to) is a series of DER elements all the way down (X.690 §10.1):
 * single-octet tags, definite lengths in the fewest octets (at most 3, as readCsr takes),
 * and the contents of every constructed element again such a series that fills it exactly.
 * Primitive contents are not looked into. Iterative: nesting depth cannot exhaust the stack.
 */
export function isWellFormedDer(buf: Buffer, from: number, to: number): boolean {
  const ends: number[] = [to];
  let p = from;
  while (ends.length > 0) {
    const end = ends[ends.length - 1] as number;
    if (p === end) {
      ends.pop();
      continue;
    }
    if (p + 2 > end) return false;
    const tag = buf[p] as number;
    // 0x1f: a multi-octet tag; 0x00: BER's end-of-contents, which DER never has.
    if ((tag & 0x1f) === 0x1f || tag === 0) return false;
    let length = buf[p + 1] as number;
    let value = p + 2;
    if (length >= 0x80) {
      const octets = length & 0x7f;
      if (octets === 0 || octets > 3 || value + octets > end || buf[value] === 0) return false;
      length = 0;
      for (let i = 0; i < octets; i++) length = length * 256 + (buf[value + i] as number);
      if (length < 0x80) return false;
      value += octets;
    }
    if (value + length > end) return false;
    if (tag & 0x20) {
      ends.push(value + length);
      p = value;
    } else {
      p = value + length;
    }
  }
  return true;
}
