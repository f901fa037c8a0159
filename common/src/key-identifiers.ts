/**
 * The key identifiers of an X.509 certificate, read from its DER by a small strict walk,
 * for the broker's connect path: `new X509Certificate(der)` costs ~100-250 µs and asn1js
 * ~200 µs per certificate, this a few µs. Anything unexpected (BER lengths, overruns,
 * trailing bytes, a duplicated extension, a missing field) answers undefined, which
 * callers treat as "no identifier".
 */

/** 2.5.29.35 authorityKeyIdentifier, as the OID's content octets. */
const OID_AUTHORITY_KEY_IDENTIFIER = Buffer.from('551d23', 'hex');
/** 2.5.29.14 subjectKeyIdentifier. */
const OID_SUBJECT_KEY_IDENTIFIER = Buffer.from('551d0e', 'hex');

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const BOOLEAN = 0x01;
const OCTET_STRING = 0x04;
const OID = 0x06;
/** TBSCertificate's version [0] EXPLICIT, issuerUniqueID [1] IMPLICIT, subjectUniqueID [2] IMPLICIT, extensions [3] EXPLICIT. */
const VERSION = 0xa0;
const ISSUER_UID = 0x81;
const SUBJECT_UID = 0x82;
const EXTENSIONS = 0xa3;
/** AuthorityKeyIdentifier's keyIdentifier [0] IMPLICIT OCTET STRING. */
const KEY_IDENTIFIER = 0x80;

/** One DER element: its tag and where its value starts and ends in the buffer. */
interface Element {
  tag: number;
  start: number;
  end: number;
}

/**
 * The keyIdentifier of the certificate's Authority Key Identifier (RFC 5280 §4.2.1.1), as
 * lower-case hex; undefined when the extension is absent, carries only issuer and serial,
 * or the DER is not strictly what RFC 5280 describes.
 */
export function authorityKeyId(der: Uint8Array): string | undefined {
  const buf = asBuffer(der);
  const value = extensionValue(buf, OID_AUTHORITY_KEY_IDENTIFIER);
  if (!value) return undefined;
  // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] OPTIONAL, authorityCertIssuer [1] OPTIONAL, authorityCertSerialNumber [2] OPTIONAL }
  const aki = only(buf, value.start, value.end, SEQUENCE);
  if (!aki) return undefined;
  const first = read(buf, aki.start, aki.end);
  if (!first || first.tag !== KEY_IDENTIFIER || first.end === first.start) return undefined;
  for (let p = first.end; p < aki.end; ) {
    const next = read(buf, p, aki.end);
    if (!next) return undefined;
    p = next.end;
  }
  return buf.toString('hex', first.start, first.end);
}

/** The certificate's Subject Key Identifier (RFC 5280 §4.2.1.2) as lower-case hex; undefined as for authorityKeyId. */
export function subjectKeyId(der: Uint8Array): string | undefined {
  const buf = asBuffer(der);
  const value = extensionValue(buf, OID_SUBJECT_KEY_IDENTIFIER);
  if (!value) return undefined;
  // SubjectKeyIdentifier ::= OCTET STRING
  const ski = only(buf, value.start, value.end, OCTET_STRING);
  if (!ski || ski.end === ski.start) return undefined;
  return buf.toString('hex', ski.start, ski.end);
}

function asBuffer(der: Uint8Array): Buffer {
  return Buffer.isBuffer(der) ? der : Buffer.from(der.buffer, der.byteOffset, der.byteLength);
}

/**
 * The extnValue contents of the extension `oid`; undefined when it is absent, appears twice
 * (RFC 5280 §4.2: at most once) or anything on the way does not parse.
 */
function extensionValue(der: Buffer, oid: Buffer): { start: number; end: number } | undefined {
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }, nothing after it.
  const cert = only(der, 0, der.length, SEQUENCE);
  if (!cert) return undefined;
  const tbs = read(der, cert.start, cert.end);
  if (!tbs || tbs.tag !== SEQUENCE) return undefined;
  // TBSCertificate: [0] version, serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, [1], [2], [3] extensions.
  let p = tbs.start;
  let e = read(der, p, tbs.end);
  if (e?.tag === VERSION) {
    p = e.end;
    e = read(der, p, tbs.end);
  }
  for (const tag of [INTEGER, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE]) {
    if (!e || e.tag !== tag) return undefined;
    p = e.end;
    e = read(der, p, tbs.end);
  }
  for (const tag of [ISSUER_UID, SUBJECT_UID]) {
    if (e?.tag === tag) {
      p = e.end;
      e = read(der, p, tbs.end);
    }
  }
  if (!e || e.tag !== EXTENSIONS || e.end !== tbs.end) return undefined;
  const list = only(der, e.start, e.end, SEQUENCE);
  if (!list) return undefined;
  let found: { start: number; end: number } | undefined;
  for (p = list.start; p < list.end; ) {
    // Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
    const ext = read(der, p, list.end);
    if (!ext || ext.tag !== SEQUENCE) return undefined;
    p = ext.end;
    const id = read(der, ext.start, ext.end);
    if (!id || id.tag !== OID) return undefined;
    let v = read(der, id.end, ext.end);
    if (v?.tag === BOOLEAN) v = v.end - v.start === 1 ? read(der, v.end, ext.end) : undefined;
    if (!v || v.tag !== OCTET_STRING || v.end !== ext.end) return undefined;
    if (id.end - id.start === oid.length && der.compare(oid, 0, oid.length, id.start, id.end) === 0) {
      if (found) return undefined;
      found = { start: v.start, end: v.end };
    }
  }
  return found;
}

/** The one element filling [start, end) exactly, with this tag. */
function only(der: Buffer, start: number, end: number, tag: number): Element | undefined {
  const e = read(der, start, end);
  return e && e.tag === tag && e.end === end ? e : undefined;
}

/**
 * The element at `pos`, which must end by `limit`. DER only (X.690 §10.1): definite lengths
 * in their shortest form, single-byte tags (no certificate field needs more); lengths are
 * capped at 3 bytes (16 MiB), far above any certificate.
 */
function read(der: Buffer, pos: number, limit: number): Element | undefined {
  if (pos + 2 > limit) return undefined;
  const tag = der[pos] as number;
  if ((tag & 0x1f) === 0x1f) return undefined;
  let length = der[pos + 1] as number;
  let p = pos + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    // n = 0 is BER's indefinite length.
    if (n === 0 || n > 3 || p + n > limit) return undefined;
    if (der[p] === 0) return undefined;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + (der[p++] as number);
    if (length < 0x80) return undefined;
  }
  if (length > limit - p) return undefined;
  return { tag, start: p, end: p + length };
}
