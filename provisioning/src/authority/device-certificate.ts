import { createHash, randomBytes as nodeRandomBytes, sign } from 'node:crypto';
import { isValidName, isValidTrustDomain, spiffeUri, type Identity } from '@tlsfleet/common';
import type { CaSigner } from './ca-signer.js';
import { TAG } from './der-tags.js';

// Why a DER writer and not pkijs/asn1js: profiling put building this TBSCertificate with
// pkijs at ~870 µs (~1,150/s) and with asn1js blocks at ~700 µs, against 250 µs per
// issuance for the 4,000/s target; this writer adds ~15-25 µs to the ~40 µs ECDSA sign.
// The shape is fixed: only serial, validity, names, key and key identifiers vary. The
// issuance-core benchmark keeps the library path ("libraryDer") beside this one.

const TAG_CONTEXT_0 = 0x80; // [0] IMPLICIT, primitive
const TAG_CONTEXT_6 = 0x86; // [6] IMPLICIT, primitive

const OID_COMMON_NAME = oid('550403'); // 2.5.4.3
const OID_SUBJECT_KEY_IDENTIFIER = oid('551d0e'); // 2.5.29.14
const OID_KEY_USAGE = oid('551d0f'); // 2.5.29.15
const OID_SUBJECT_ALT_NAME = oid('551d11'); // 2.5.29.17
const OID_BASIC_CONSTRAINTS = oid('551d13'); // 2.5.29.19
const OID_AUTHORITY_KEY_IDENTIFIER = oid('551d23'); // 2.5.29.35
const OID_EXT_KEY_USAGE = oid('551d25'); // 2.5.29.37
const OID_CRL_DISTRIBUTION_POINTS = oid('551d1f'); // 2.5.29.31
const OID_CLIENT_AUTH = oid('2b06010505070302'); // 1.3.6.1.5.5.7.3.2

// RFC 5280 §4.1.2.1: extensions present, so v3, encoded as the INTEGER 2.
const VERSION_V3 = der(TAG.CONTEXT_0_CONSTRUCTED, der(TAG.INTEGER, Buffer.of(2)));

// RFC 5758 §3.2: ecdsa-with-SHA256 / -SHA384, parameters absent. Also the outer
// signatureAlgorithm, which must equal the TBS signature field (RFC 5280 §4.1.1.2).
const SIGNATURE_ALGORITHMS = {
  'P-256': { hash: 'sha256', algorithmIdentifier: der(TAG.SEQUENCE, oid('2a8648ce3d040302')) },
  'P-384': { hash: 'sha384', algorithmIdentifier: der(TAG.SEQUENCE, oid('2a8648ce3d040303')) },
} as const;

// RFC 5280 §4.2.1.9: critical; cA DEFAULT FALSE is omitted in DER (X.690 §11.5), so an empty SEQUENCE.
const BASIC_CONSTRAINTS_END_ENTITY = extension(OID_BASIC_CONSTRAINTS, true, der(TAG.SEQUENCE));
// RFC 5280 §4.2.1.3: critical; digitalSignature is bit 0, 7 unused bits (X.690 §11.2.2 drops trailing zeros).
const KEY_USAGE_DIGITAL_SIGNATURE = extension(OID_KEY_USAGE, true, der(TAG.BIT_STRING, Buffer.of(7, 0x80)));
// RFC 5280 §4.2.1.12: id-kp-clientAuth only; not critical.
const EXT_KEY_USAGE_CLIENT_AUTH = extension(OID_EXT_KEY_USAGE, false, der(TAG.SEQUENCE, OID_CLIENT_AUTH));

/** RFC 5280 §4.1.2.2: serial numbers are positive and at most 20 octets. */
const MAX_SERIAL_OCTETS = 20;

export interface DeviceCertificateParams {
  /** The issuing CA, loaded once at start-up. */
  readonly issuer: CaSigner;
  /** The subject's SubjectPublicKeyInfo DER, as ParsedCsr.spkiDer gives it. */
  readonly subjectPublicKeyDer: Buffer;
  /** Identity from the token or the authenticated certificate, never from the CSR. */
  readonly identity: Identity;
  /** Content octets of a positive, minimally encoded DER INTEGER with >= 64 random bits; see randomSerial. */
  readonly serial: Buffer;
  /** Chosen by the caller, already backdated (5 minutes) for clock skew; truncated to the second. */
  readonly notBefore: Date;
  /** Truncated to the second. */
  readonly notAfter: Date;
  /** An absolute http(s) URL of the issuer's CRL, written as a CRL Distribution Point; default none. */
  readonly crlDistributionPoint?: string | undefined;
}

/**
 * Builds and signs a device certificate with the profile of docs/reference/files.md, identity and
 * returns its DER. Throws RangeError for arguments the caller should never pass.
 */
export function buildDeviceCertificate(params: DeviceCertificateParams): Buffer {
  const { issuer, subjectPublicKeyDer, identity, serial, notBefore, notAfter, crlDistributionPoint } = params;
  checkSerial(serial);
  if (!isValidName(identity.name) || !isValidTrustDomain(identity.trustDomain)) throw new RangeError('invalid identity');
  if (!(notBefore.getTime() < notAfter.getTime())) throw new RangeError('notBefore must be before notAfter');
  const algorithm = SIGNATURE_ALGORITHMS[issuer.curve];

  const tbs = der(
    TAG.SEQUENCE,
    VERSION_V3,
    der(TAG.INTEGER, serial),
    algorithm.algorithmIdentifier,
    issuer.subjectNameDer, // RFC 5280 §4.1.2.4: byte for byte the issuer's subject
    der(TAG.SEQUENCE, derTime(notBefore), derTime(notAfter)),
    commonNameOnly(identity.name),
    subjectPublicKeyDer,
    der(
      TAG.CONTEXT_3_CONSTRUCTED,
      der(
        TAG.SEQUENCE,
        BASIC_CONSTRAINTS_END_ENTITY,
        KEY_USAGE_DIGITAL_SIGNATURE,
        EXT_KEY_USAGE_CLIENT_AUTH,
        // RFC 5280 §4.2.1.6: exactly one URI; not critical because the subject is not empty.
        extension(OID_SUBJECT_ALT_NAME, false, der(TAG.SEQUENCE, der(TAG_CONTEXT_6, Buffer.from(spiffeUri(identity), 'ascii')))),
        // RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value.
        extension(OID_SUBJECT_KEY_IDENTIFIER, false, der(TAG.OCTET_STRING, createHash('sha1').update(subjectPublicKeyBits(subjectPublicKeyDer)).digest())),
        // RFC 5280 §4.2.1.1: keyIdentifier [0] only, equal to the issuer's subjectKeyIdentifier.
        extension(OID_AUTHORITY_KEY_IDENTIFIER, false, der(TAG.SEQUENCE, der(TAG_CONTEXT_0, issuer.keyIdentifier))),
        ...(crlDistributionPoint === undefined ? [] : [crlDistributionPoints(crlDistributionPoint)]),
      ),
    ),
  );
  const signature = sign(algorithm.hash, tbs, { key: issuer.privateKey, dsaEncoding: 'der' });
  // RFC 5280 §4.1: Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
  return der(TAG.SEQUENCE, tbs, algorithm.algorithmIdentifier, der(TAG.BIT_STRING, Buffer.of(0), signature));
}

/**
 * 16 random octets as a serial: 126 random bits, well above the 64 the identity format promises and
 * CA/B BR §7.1. The top bit is cleared (positive, RFC 5280 §4.1.2.2) and the next one
 * set, so the first octet is never zero and the DER INTEGER is always minimal, 16 octets.
 */
export function randomSerial(randomBytes: (size: number) => Buffer = nodeRandomBytes): Buffer {
  const serial = randomBytes(16);
  serial[0] = ((serial[0] as number) & 0x7f) | 0x40;
  return serial;
}

function checkSerial(serial: Buffer): void {
  const first = serial[0];
  if (first === undefined || serial.length > MAX_SERIAL_OCTETS) throw new RangeError('serial must be 1..20 octets');
  if (first >= 0x80) throw new RangeError('serial must be positive');
  if (first === 0 && (serial.length === 1 || (serial[1] as number) < 0x80)) throw new RangeError('serial must be minimally encoded and non-zero');
}

/**
 * RFC 5280 §4.2.1.13, not critical: one DistributionPoint whose distributionPoint [0] is a
 * fullName [0] holding one uniformResourceIdentifier [6]; no reasons, no cRLIssuer (the CA
 * that issued the certificate signs the CRL).
 */
function crlDistributionPoints(url: string): Buffer {
  // IA5String: a URL already percent-encoded to ASCII (RFC 5280 §4.2.1.13 / §7.4).
  if (!/^https?:\/\/[\x21-\x7e]+$/.test(url)) throw new RangeError('crlDistributionPoint must be an ASCII http(s) URL');
  const fullName = der(TAG.CONTEXT_0_CONSTRUCTED, der(TAG_CONTEXT_6, Buffer.from(url, 'ascii')));
  return extension(OID_CRL_DISTRIBUTION_POINTS, false, der(TAG.SEQUENCE, der(TAG.SEQUENCE, der(TAG.CONTEXT_0_CONSTRUCTED, fullName))));
}

/** Name ::= SEQUENCE OF SET OF AttributeTypeAndValue, here CN=<name> as a UTF8String (RFC 5280 §4.1.2.6). */
function commonNameOnly(name: string): Buffer {
  return der(TAG.SEQUENCE, der(TAG.SET, der(TAG.SEQUENCE, OID_COMMON_NAME, der(TAG.UTF8_STRING, Buffer.from(name, 'utf8')))));
}

/** RFC 5280 §4.1.2.5: UTCTime for 1950..2049, GeneralizedTime otherwise; always Z, whole seconds. */
function derTime(date: Date): Buffer {
  const year = date.getUTCFullYear();
  if (!(year >= 1 && year <= 9999)) throw new RangeError('validity date out of range');
  const rest = [date.getUTCMonth() + 1, date.getUTCDate(), date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds()]
    .map((n) => String(n).padStart(2, '0'))
    .join('');
  if (year >= 1950 && year < 2050) return der(TAG.UTC_TIME, Buffer.from(`${String(year % 100).padStart(2, '0')}${rest}Z`, 'ascii'));
  return der(TAG.GENERALIZED_TIME, Buffer.from(`${String(year).padStart(4, '0')}${rest}Z`, 'ascii'));
}

const NOT_ONE_SPKI = 'subjectPublicKeyDer is not one SubjectPublicKeyInfo';

/** The subjectPublicKey BIT STRING value (without the unused-bits octet) of an SPKI. */
function subjectPublicKeyBits(spkiDer: Buffer): Buffer {
  const spki = readHeader(spkiDer, 0, TAG.SEQUENCE);
  if (spki.end !== spkiDer.length) throw new RangeError(NOT_ONE_SPKI);
  const algorithm = readHeader(spkiDer, spki.value, TAG.SEQUENCE);
  const bits = readHeader(spkiDer, algorithm.end, TAG.BIT_STRING);
  if (bits.end !== spki.end || bits.end - bits.value < 2 || spkiDer[bits.value] !== 0) throw new RangeError(NOT_ONE_SPKI);
  return spkiDer.subarray(bits.value + 1, bits.end);
}

/** Tag and definite length at `offset`; enough to step over the SPKI that parseCsr already checked. */
function readHeader(buf: Buffer, offset: number, tag: number): { value: number; end: number } {
  if (buf[offset] !== tag || offset + 2 > buf.length) throw new RangeError(NOT_ONE_SPKI);
  let length = buf[offset + 1] as number;
  let value = offset + 2;
  if (length >= 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 3) throw new RangeError(NOT_ONE_SPKI);
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (buf[value + i] ?? 0);
    value += octets;
  }
  if (value + length > buf.length) throw new RangeError(NOT_ONE_SPKI);
  return { value, end: value + length };
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE (omitted when false, X.690 §11.5), extnValue OCTET STRING } */
function extension(extnId: Buffer, critical: boolean, value: Buffer): Buffer {
  return critical
    ? der(TAG.SEQUENCE, extnId, der(TAG.BOOLEAN, Buffer.of(0xff)), der(TAG.OCTET_STRING, value))
    : der(TAG.SEQUENCE, extnId, der(TAG.OCTET_STRING, value));
}

function oid(contentHex: string): Buffer {
  return der(TAG.OID, Buffer.from(contentHex, 'hex'));
}

/** One DER element: tag, definite length in the fewest octets (X.690 §10.1), contents. */
function der(tag: number, ...contents: Buffer[]): Buffer {
  let length = 0;
  for (const c of contents) length += c.length;
  const lengthOctets = length < 0x80 ? 0 : length < 0x100 ? 1 : length < 0x10000 ? 2 : 3;
  const out = Buffer.allocUnsafe(2 + lengthOctets + length);
  out[0] = tag;
  out[1] = lengthOctets === 0 ? length : 0x80 | lengthOctets;
  for (let i = 0; i < lengthOctets; i++) out[2 + i] = (length >> (8 * (lengthOctets - 1 - i))) & 0xff;
  let offset = 2 + lengthOctets;
  for (const c of contents) offset += c.copy(out, offset);
  return out;
}
