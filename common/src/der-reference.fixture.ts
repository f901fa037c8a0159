import * as asn1js from 'asn1js';
import { derLength } from './test-arbitraries.fixture.js';

/**
 * asn1js's general BER decoder as the reference the DER walkers' property tests compare
 * with: it decodes everything, and these helpers ask the DER questions (X.690 §10.1) of
 * the elements a walker reads. Test-only.
 */

export type Block = asn1js.AsnType & { valueBeforeDecodeView: Uint8Array; lenBlock: { length: number; isIndefiniteForm: boolean }; valueBlock: { value?: Block[] } };

/** The element's tag byte when its header is DER (one tag octet, shortest definite length), else undefined. */
export function derTag(block: Block): number | undefined {
  const raw = block.valueBeforeDecodeView;
  if (block.lenBlock.isIndefiniteForm) return undefined;
  const length = block.lenBlock.length;
  const header = [raw[0] as number, ...derLength(length)];
  if (raw.length !== header.length + length) return undefined;
  return header.every((b, i) => raw[i] === b) ? header[0] : undefined;
}

export const contents = (block: Block): Buffer => {
  const raw = Buffer.from(block.valueBeforeDecodeView);
  return raw.subarray(raw.length - block.lenBlock.length);
};
/** A constructed element's children (a constructed string type's value is its text, not a list). */
export const children = (block: Block): Block[] => (Array.isArray(block.valueBlock.value) ? block.valueBlock.value : []);

/**
 * One whole element decoded by asn1js, or 'undecodable'. asn1js 4 lets a child run past
 * the end of its parent (a Validity whose UTCTime length grew by 2 swallowed the subject
 * after it), so each constructed element's children must also tile its contents exactly.
 */
export function decode(bytes: Buffer): Block | 'undecodable' {
  let decoded: ReturnType<typeof asn1js.fromBER>;
  try {
    decoded = asn1js.fromBER(bytes);
  } catch {
    return 'undecodable'; // asn1js throws on some ill-formed times ("Wrong input string for conversion")
  }
  const { offset, result } = decoded;
  return offset !== bytes.length || result.error || !tiled(result as Block) ? 'undecodable' : (result as Block);
}

function tiled(block: Block): boolean {
  if (!block.idBlock.isConstructed) return true;
  if (!Array.isArray(block.valueBlock.value)) return false;
  const parts = children(block);
  const sum = parts.reduce((n, p) => n + p.valueBeforeDecodeView.length, 0);
  return !block.lenBlock.isIndefiniteForm && sum === block.lenBlock.length && parts.every(tiled);
}

/** A DER element: one tag octet, the shortest definite length, the contents. */
export function tlv(tag: number, ...body: Uint8Array[]): Buffer {
  const value = Buffer.concat(body);
  return Buffer.concat([Buffer.of(tag, ...derLength(value.length)), value]);
}

/** Whether the element and everything inside its constructed contents have DER headers (and none is BER's end-of-contents). */
export function allDer(block: Block): boolean {
  const tag = derTag(block);
  return tag !== undefined && tag !== 0 && (!block.idBlock.isConstructed || children(block).every(allDer));
}
