import type { KeyObject } from 'node:crypto';
import { TlsfleetError } from '@tlsfleet/common';
import { TAG } from './der-tags.js';
import { verifyPossession } from './verify-possession.js';
import { isWellFormedDer } from './well-formed-der.js';

/**
 * What issuance takes from a CSR: its public key, after the signature proved possession
 * (docs/reference/files.md, identity). Subject and requested extensions are never read.
 */
export interface ParsedCsr {
  readonly publicKey: KeyObject;
  /** The CSR's SubjectPublicKeyInfo, verbatim DER (a copy, not a view of the input). */
  readonly spkiDer: Buffer;
}

/** The public key as the SPKI states it, read without importing it: enough for key policy. */
export type SpkiKey =
  | { readonly type: 'ec'; readonly curve: EcCurve | undefined; readonly curveOid: string; readonly point: Buffer }
  | { readonly type: 'rsa'; readonly modulusBits: number; readonly exponent: bigint }
  | { readonly type: 'ed25519' };

/**
 * A CSR read without any cryptography: what key policy checks and what proof of
 * possession verifies. Every buffer is a copy, not a view of the input.
 */
export interface CsrParts {
  readonly spkiDer: Buffer;
  readonly key: SpkiKey;
  /** The exact certificationRequestInfo bytes the signature covers. */
  readonly signedDer: Buffer;
  readonly signature: Buffer;
  /** Digest of the signature algorithm; null for Ed25519. */
  readonly hash: string | null;
}

export interface EcCurve {
  readonly name: 'P-256' | 'P-384';
  readonly coordinateBytes: number;
}

// Why a hand-rolled DER walker and not asn1js: profiling put asn1js.fromBER alone at
// ~200 µs per P-256 CSR (~5,000/s, mostly its per-block buffer-type checks), most of the
// 250 µs budget of the 4,000/s target. This walker reads only the outer elements below
// and is lost in the noise next to key import + verify. The issuance-core benchmark runs
// the same steps with asn1js + pkijs ("libraryDer") beside this core for comparison.

type KeyType = SpkiKey['type'];

/** Key algorithms a CSR may carry, by OID content bytes (hex); anything else is key_rejected. */
const KEY_ALGORITHMS: ReadonlyMap<string, KeyType> = new Map([
  ['2a8648ce3d0201', 'ec'], // id-ecPublicKey, RFC 5480 §2.1.1
  ['2a864886f70d010101', 'rsa'], // rsaEncryption, RFC 3279 §2.3.1
  ['2b6570', 'ed25519'], // id-Ed25519, RFC 8410 §3
]);

/**
 * Signature algorithms accepted for proof of possession. MD5, SHA-1, RSASSA-PSS and
 * everything else are absent on purpose and make the CSR invalid_csr.
 */
const SIGNATURE_ALGORITHMS: ReadonlyMap<string, { hash: string | null; keyType: KeyType }> = new Map([
  ['2a8648ce3d040302', { hash: 'sha256', keyType: 'ec' }], // ecdsa-with-SHA256, RFC 5758 §3.2
  ['2a8648ce3d040303', { hash: 'sha384', keyType: 'ec' }], // ecdsa-with-SHA384
  ['2a8648ce3d040304', { hash: 'sha512', keyType: 'ec' }], // ecdsa-with-SHA512
  ['2a864886f70d01010b', { hash: 'sha256', keyType: 'rsa' }], // sha256WithRSAEncryption, RFC 4055 §5
  ['2a864886f70d01010c', { hash: 'sha384', keyType: 'rsa' }], // sha384WithRSAEncryption
  ['2a864886f70d01010d', { hash: 'sha512', keyType: 'rsa' }], // sha512WithRSAEncryption
  ['2b6570', { hash: null, keyType: 'ed25519' }], // Ed25519, RFC 8410 §6
]);

/** The curves key policy allows, by namedCurve OID content bytes (RFC 5480 §2.1.1.1). */
const CURVES: ReadonlyMap<string, EcCurve> = new Map([
  ['2a8648ce3d030107', { name: 'P-256', coordinateBytes: 32 }], // secp256r1
  ['2b81040022', { name: 'P-384', coordinateBytes: 48 }], // secp384r1
]);

/** One DER element: `start` is its first (tag) byte, `value..end` its contents. */
interface Tlv {
  readonly start: number;
  readonly value: number;
  readonly end: number;
}

/**
 * Parses a PKCS#10 CertificationRequest (RFC 2986 §4) and proves possession: readCsr, then
 * verifyPossession. Key size and curve are checkKeyPolicy's job; issuance runs the policy
 * between the two (authority.ts) so a refused key never costs a signature verification.
 */
export async function parseCsr(der: Uint8Array): Promise<ParsedCsr> {
  const csr = readCsr(der);
  return { publicKey: await verifyPossession(csr), spkiDer: csr.spkiDer };
}

/**
 * Reads a PKCS#10 CertificationRequest (RFC 2986 §4) without any cryptography.
 * Throws TlsfleetError `invalid_csr` for malformed DER, trailing bytes, a version other
 * than v1, or an unsupported or weak signature algorithm; `key_rejected` for a key
 * algorithm other than EC, RSA or Ed25519, or an RSA key whose integers are malformed.
 */
export function readCsr(der: Uint8Array): CsrParts {
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);

  const request = readTlv(buf, 0, buf.length, TAG.SEQUENCE);
  if (request.end !== buf.length) throw invalidCsr('trailing bytes after the CertificationRequest');
  const info = readTlv(buf, request.value, request.end, TAG.SEQUENCE);
  const signatureAlgorithm = readTlv(buf, info.end, request.end, TAG.SEQUENCE);
  const signatureBits = readTlv(buf, signatureAlgorithm.end, request.end, TAG.BIT_STRING);
  if (signatureBits.end !== request.end) throw invalidCsr('unexpected element after the signature');

  // CertificationRequestInfo ::= SEQUENCE { version, subject, subjectPKInfo, attributes [0] }
  const version = readTlv(buf, info.value, info.end, TAG.INTEGER);
  if (version.end - version.value !== 1 || buf[version.value] !== 0) throw invalidCsr('version must be v1(0)');
  const subject = readTlv(buf, version.end, info.end, TAG.SEQUENCE); // ignored: identity never comes from the CSR
  const spki = readTlv(buf, subject.end, info.end, TAG.SEQUENCE);
  let infoRest = spki.end;
  // Attributes (extension requests included) are ignored; some encoders omit the empty [0].
  if (infoRest < info.end) infoRest = readTlv(buf, infoRest, info.end, TAG.CONTEXT_0_CONSTRUCTED).end;
  if (infoRest !== info.end) throw invalidCsr('unexpected element in certificationRequestInfo');
  // The subject and attributes are never read, but a CSR that is not DER inside them is
  // still malformed (openssl cannot read it): every element's header, all the way down.
  if (!isWellFormedDer(buf, info.value, info.end)) throw invalidCsr('malformed DER inside certificationRequestInfo');

  const spkiDer = Buffer.from(buf.subarray(spki.start, spki.end));
  const key = readSubjectPublicKeyInfo(spkiDer);
  const signer = SIGNATURE_ALGORITHMS.get(signatureAlgorithmOid(buf, signatureAlgorithm));
  if (!signer) throw invalidCsr('unsupported signature algorithm');
  if (key.type !== signer.keyType) throw invalidCsr('signature algorithm does not match the key');
  return {
    spkiDer,
    key,
    signedDer: Buffer.from(buf.subarray(info.start, info.end)),
    signature: Buffer.from(bitStringBytes(buf, signatureBits)),
    hash: signer.hash,
  };
}

/** SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING } (RFC 5280 §4.1) */
function readSubjectPublicKeyInfo(spkiDer: Buffer): SpkiKey {
  const spki = readTlv(spkiDer, 0, spkiDer.length, TAG.SEQUENCE);
  const algorithm = readTlv(spkiDer, spki.value, spki.end, TAG.SEQUENCE);
  const keyBits = readTlv(spkiDer, algorithm.end, spki.end, TAG.BIT_STRING);
  if (keyBits.end !== spki.end) throw invalidCsr('unexpected element in subjectPublicKeyInfo');
  const algorithmOid = readTlv(spkiDer, algorithm.value, algorithm.end, TAG.OID);
  const type = KEY_ALGORITHMS.get(hex(spkiDer, algorithmOid));
  if (!type) throw keyRejected('unsupported key algorithm');
  // The SPKI is copied into the certificate verbatim, so it must be the key's one encoding.
  if (type === 'ed25519') {
    if (algorithmOid.end !== algorithm.end) throw keyRejected('Ed25519 key algorithm with parameters'); // RFC 8410 §3: absent
    return { type };
  }
  const keyBytes = bitStringBytes(spkiDer, keyBits);
  if (type === 'rsa') {
    // RFC 3279 §2.3.1: the parameters of rsaEncryption MUST be present and NULL.
    if (algorithm.end - algorithmOid.end !== 2 || spkiDer[algorithmOid.end] !== TAG.NULL || spkiDer[algorithmOid.end + 1] !== 0) {
      throw keyRejected('rsaEncryption parameters must be NULL');
    }
    return readRsaPublicKey(keyBytes);
  }
  const curveOid = namedCurve(spkiDer, algorithmOid.end, algorithm.end);
  return { type, curve: CURVES.get(curveOid), curveOid, point: keyBytes };
}

/** RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 §A.1.1) */
function readRsaPublicKey(der: Buffer): SpkiKey {
  const key = readTlv(der, 0, der.length, TAG.SEQUENCE);
  if (key.end !== der.length) throw keyRejected('trailing bytes after the RSA public key');
  const modulus = positiveInteger(der, readTlv(der, key.value, key.end, TAG.INTEGER));
  const exponentTlv = readTlv(der, modulus.end, key.end, TAG.INTEGER);
  if (exponentTlv.end !== key.end) throw keyRejected('unexpected element in the RSA public key');
  const exponent = positiveInteger(der, exponentTlv);
  const top = der[modulus.value] as number;
  const modulusBits = (modulus.end - modulus.value - 1) * 8 + (32 - Math.clz32(top));
  // Policy caps e at 2^32; a longer exponent is kept as "too large" without converting it.
  const e = exponent.end - exponent.value > 8 ? 2n ** 64n : BigInt(`0x${der.toString('hex', exponent.value, exponent.end)}`);
  return { type: 'rsa', modulusBits, exponent: e };
}

/** The magnitude octets of a DER INTEGER that must be positive, without its sign octet (X.690 §8.3). */
function positiveInteger(buf: Buffer, tlv: Tlv): Tlv {
  if (tlv.end === tlv.value || ((buf[tlv.value] as number) & 0x80) !== 0) throw keyRejected('RSA integers must be positive');
  let value = tlv.value;
  while (value < tlv.end - 1 && buf[value] === 0) value++;
  if (buf[value] === 0) throw keyRejected('RSA integers must be positive');
  return { start: tlv.start, value, end: tlv.end };
}

/** ECParameters must be a namedCurve OID (RFC 5480 §2.1.1: implicitCurve and specifiedCurve MUST NOT be used). */
function namedCurve(buf: Buffer, from: number, to: number): string {
  if (from === to || buf[from] !== TAG.OID) throw keyRejected('EC key without a named curve');
  const oid = readTlv(buf, from, to, TAG.OID);
  if (oid.end !== to) throw invalidCsr('unexpected element in the key algorithm');
  return hex(buf, oid);
}

/** The OID of the signature AlgorithmIdentifier, whose parameters must be absent or NULL. */
function signatureAlgorithmOid(buf: Buffer, algorithm: Tlv): string {
  const oid = readTlv(buf, algorithm.value, algorithm.end, TAG.OID);
  if (oid.end !== algorithm.end) {
    const parameters = readTlv(buf, oid.end, algorithm.end, TAG.NULL);
    if (parameters.end !== algorithm.end || parameters.value !== parameters.end) throw invalidCsr('unexpected signature algorithm parameters');
  }
  return hex(buf, oid);
}

/** The bytes of a BIT STRING that must hold whole octets (unused-bits octet 0, X.690 §8.6.2). */
function bitStringBytes(buf: Buffer, bits: Tlv): Buffer {
  if (bits.end - bits.value < 2 || buf[bits.value] !== 0) throw invalidCsr('BIT STRING with unused bits');
  return buf.subarray(bits.value + 1, bits.end);
}

/**
 * Reads the element at `offset` that must end by `limit` and carry `tag`. DER only
 * (X.690 §10.1): single-octet tags, definite lengths in the minimal number of octets.
 */
function readTlv(buf: Buffer, offset: number, limit: number, tag: number): Tlv {
  if (offset + 2 > limit) throw invalidCsr('truncated DER');
  if (buf[offset] !== tag) throw invalidCsr(`expected DER tag 0x${tag.toString(16)}`);
  let length = buf[offset + 1] as number;
  let value = offset + 2;
  if (length >= 0x80) {
    const octets = length & 0x7f;
    // 0x80 is BER's indefinite form; more than 3 length octets is beyond any CSR we accept.
    if (octets === 0 || octets > 3 || value + octets > limit) throw invalidCsr('unsupported DER length');
    if (buf[value] === 0) throw invalidCsr('non-minimal DER length');
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (buf[value + i] as number);
    if (length < 0x80) throw invalidCsr('non-minimal DER length');
    value += octets;
  }
  const end = value + length;
  if (end > limit) throw invalidCsr('truncated DER');
  return { start: offset, value, end };
}

function hex(buf: Buffer, tlv: Tlv): string {
  return buf.toString('hex', tlv.value, tlv.end);
}

function invalidCsr(reason: string): TlsfleetError {
  return new TlsfleetError('invalid_csr', `The certificate signing request is invalid: ${reason}.`);
}

function keyRejected(reason: string): TlsfleetError {
  return new TlsfleetError('key_rejected', `The public key is refused by policy: ${reason}.`);
}
