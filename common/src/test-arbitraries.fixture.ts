import fc from 'fast-check';

/**
 * Shared fast-check pieces for the property tests of the parsers that take untrusted bytes
 * (CSR and certificate DER, PROXY headers, forwarded certificates, MQTT packets). Test-only.
 */

/**
 * One edit of a valid encoding. Positions are taken modulo the buffer's length when the
 * edit is applied, so any list applies to any buffer and shrinks towards the first byte.
 */
export type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; byte: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: number[] }
  | { op: 'delete'; at: number; count: number }
  | { op: 'repeat'; at: number; count: number };

const at = fc.nat({ max: 1 << 20 });

/** `min` (default 1) to `max` (default 3) byte-level edits: bit flips, overwrites, truncations, insertions, deletions, repeated ranges. */
export function mutations(max = 3, min = 1): fc.Arbitrary<Mutation[]> {
  const one: fc.Arbitrary<Mutation> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant('flip' as const), at, bit: fc.integer({ min: 0, max: 7 }) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('set' as const), at, byte: fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0xff, 0x30, 0x0a, 0x0d, 0x20) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('truncate' as const), at }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('insert' as const), at, bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 4 }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), at, count: fc.integer({ min: 1, max: 4 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('repeat' as const), at, count: fc.integer({ min: 1, max: 8 }) }) },
  );
  return fc.array(one, { minLength: min, maxLength: max });
}

/** `valid` with the edits applied in order (a new buffer; `valid` is left as it is). */
export function applyMutations(valid: Uint8Array, edits: readonly Mutation[]): Buffer {
  let buf = Buffer.from(valid);
  for (const m of edits) {
    const i = buf.length === 0 ? 0 : m.at % buf.length;
    switch (m.op) {
      case 'flip':
        if (buf.length > 0) buf[i] = (buf[i] as number) ^ (1 << m.bit);
        break;
      case 'set':
        if (buf.length > 0) buf[i] = m.byte;
        break;
      case 'truncate':
        buf = buf.subarray(0, i);
        break;
      case 'insert':
        buf = Buffer.concat([buf.subarray(0, i), Buffer.from(m.bytes), buf.subarray(i)]);
        break;
      case 'delete':
        buf = Buffer.concat([buf.subarray(0, i), buf.subarray(i + m.count)]);
        break;
      case 'repeat':
        buf = Buffer.concat([buf.subarray(0, i + m.count), buf.subarray(i)]);
        break;
    }
  }
  return Buffer.from(buf);
}

/** Where a DER element's header and contents are in its encoding, and the elements inside a constructed one. */
export interface DerElement {
  start: number;
  /** First contents byte. */
  value: number;
  end: number;
  children: DerElement[] | undefined;
}

/**
 * The elements of a valid DER encoding as a tree (a lister for length edits, not a
 * validator: it trusts its input).
 */
export function derTree(der: Uint8Array, from = 0, to = der.length): DerElement[] {
  const out: DerElement[] = [];
  for (let p = from; p + 2 <= to; ) {
    const tag = der[p] as number;
    let length = der[p + 1] as number;
    let value = p + 2;
    if (length & 0x80) {
      const n = length & 0x7f;
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + (der[value + i] as number);
      value += n;
    }
    const end = value + length;
    if (end > to) break;
    out.push({ start: p, value, end, children: tag & 0x20 ? derTree(der, value, end) : undefined });
    p = end;
  }
  return out;
}

/** Every element, outermost first (pre-order). */
export function derElements(der: Uint8Array, tree = derTree(der)): DerElement[] {
  const out: DerElement[] = [];
  const walk = (list: DerElement[]) => {
    for (const e of list) {
      out.push(e);
      if (e.children) walk(e.children);
    }
  };
  walk(tree);
  return out;
}

/**
 * A rewrite of one element's length field: off by `delta` (the rest left as it was, so the
 * element overruns or falls short), or the same length in a form DER forbids (X.690 §10.1),
 * its enclosing elements' lengths grown to match so that only the form is wrong.
 */
export type DerLengthEdit =
  | { op: 'der-length'; element: number; form: 'delta'; delta: number }
  | { op: 'der-length'; element: number; form: 'long-form' | 'leading-zero' | 'indefinite' | 'five-octets' | 'huge' };

export function derLengthEdits(): fc.Arbitrary<DerLengthEdit> {
  return fc.oneof(
    fc.record({ op: fc.constant('der-length' as const), element: at, form: fc.constant('delta' as const), delta: fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0) }),
    fc.record({ op: fc.constant('der-length' as const), element: at, form: fc.constantFrom('long-form' as const, 'leading-zero' as const, 'indefinite' as const, 'five-octets' as const, 'huge' as const) }),
  );
}

export function applyDerLengthEdit(der: Uint8Array, edit: DerLengthEdit): Buffer {
  const buf = Buffer.from(der);
  const top = derTree(buf);
  const elements = derElements(buf, top);
  if (elements.length === 0) return buf;
  const target = elements[edit.element % elements.length] as DerElement;
  const length = target.end - target.value;
  if (edit.form === 'delta') {
    const header = derLength(Math.max(0, length + edit.delta));
    return Buffer.concat([buf.subarray(0, target.start + 1), Buffer.from(header), buf.subarray(target.value)]);
  }
  const minimal = derLength(length);
  const forms: Record<typeof edit.form, number[]> = {
    'long-form': length < 0x80 ? [0x81, length] : [0x80 | minimal.length, 0, ...minimal.slice(1)],
    'leading-zero': [0x82, length >> 8, length & 0xff],
    indefinite: [0x80],
    'five-octets': [0x85, 0, 0, 0, length >> 8, length & 0xff],
    huge: [0x84, 0x7f, 0xff, 0xff, 0xff],
  };
  const encode = (e: DerElement): Buffer => {
    if (e === target) {
      const eoc = edit.form === 'indefinite' ? Buffer.of(0, 0) : Buffer.alloc(0);
      return Buffer.concat([buf.subarray(e.start, e.start + 1), Buffer.from(forms[edit.form]), buf.subarray(e.value, e.end), eoc]);
    }
    if (!e.children || target.start < e.value || target.start >= e.end) return buf.subarray(e.start, e.end);
    const contents = Buffer.concat(e.children.map(encode));
    return Buffer.concat([buf.subarray(e.start, e.start + 1), Buffer.from(derLength(contents.length)), contents]);
  };
  const last = top[top.length - 1] as DerElement;
  return Buffer.concat([...top.map(encode), buf.subarray(last.end)]);
}

/** X.690 §10.1: the definite length in its shortest form. */
export function derLength(length: number): number[] {
  if (length < 0x80) return [length];
  const octets: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) octets.unshift(n % 256);
  return [0x80 | octets.length, ...octets];
}

/**
 * Above this a single parse of a few KiB counts as a hang: each parser here takes
 * microseconds, so only super-linear work (or a loop that never ends) gets near it.
 */
export const HANG_MS = 1_000;

/** What `parse` answered: its value, or the error it threw if `typed` says it is the module's typed error; anything else is rethrown. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: Error };

export function settle<T>(parse: () => T, typed: (err: unknown) => boolean): Outcome<T> {
  const began = performance.now();
  let outcome: Outcome<T>;
  try {
    outcome = { ok: true, value: parse() };
  } catch (err) {
    if (!typed(err)) throw err;
    outcome = { ok: false, error: err as Error };
  }
  assertNoHang(began);
  return outcome;
}

export async function settleAsync<T>(parse: () => Promise<T>, typed: (err: unknown) => boolean): Promise<Outcome<T>> {
  const began = performance.now();
  let outcome: Outcome<T>;
  try {
    outcome = { ok: true, value: await parse() };
  } catch (err) {
    if (!typed(err)) throw err;
    outcome = { ok: false, error: err as Error };
  }
  assertNoHang(began);
  return outcome;
}

export function assertNoHang(began: number): void {
  const took = performance.now() - began;
  if (took > HANG_MS) throw new Error(`one parse took ${took.toFixed(0)} ms (bound ${HANG_MS} ms): super-linear or unbounded work`);
}

/** Chunk boundaries for reading `length` bytes in pieces, as a socket may deliver them. */
export function splits(length: number, cuts: readonly number[]): number[] {
  return [...new Set(cuts.map((c) => (length === 0 ? 0 : c % length)))].filter((c) => c > 0).sort((a, b) => a - b);
}

export function pieces(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const at = [0, ...splits(buf.length, cuts), buf.length];
  const out: Buffer[] = [];
  for (let i = 0; i + 1 < at.length; i++) out.push(buf.subarray(at[i], at[i + 1]));
  return out;
}
