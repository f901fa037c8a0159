import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorityKeyId, subjectKeyId } from './key-identifiers.js';
import { OpensslTestCa } from './openssl-test-ca.fixture.js';
import { pemCertificates } from './pem.js';
import { children, contents, decode, derTag, tlv, type Block } from './der-reference.fixture.js';
import { applyDerLengthEdit, applyMutations, derLength, derLengthEdits, mutations, settle } from './test-arbitraries.fixture.js';

// The reference is asn1js's general BER decoder, asked the questions RFC 5280 §4.1 and
// §4.2.1.1–2 pose, with X.690 §10.1's DER rules checked on every element on the way.
// Where asn1js cannot decode the whole input, the walk (which reads only the elements on its
// path) may still answer; those runs only check that it neither throws nor hangs.

const AKI = '551d23';
const SKI = '551d0e';

/** The extnValue contents of `oid` as asn1js reads the certificate; undefined as RFC 5280 and DER rule it out. */
function referenceExtension(der: Buffer, oid: string): Buffer | undefined | 'undecodable' {
  const cert = decode(der);
  if (cert === 'undecodable') return cert;
  const tbs = children(cert)[0];
  if (derTag(cert) !== 0x30 || !tbs || derTag(tbs) !== 0x30) return undefined;
  const fields = [...children(tbs)];
  if (fields[0] && derTag(fields[0]) === 0xa0) fields.shift(); // version [0] EXPLICIT
  for (const tag of [0x02, 0x30, 0x30, 0x30, 0x30, 0x30]) if (!fields[0] || derTag(fields.shift() as Block) !== tag) return undefined;
  for (const tag of [0x81, 0x82]) if (fields[0] && derTag(fields[0]) === tag) fields.shift(); // issuerUniqueID, subjectUniqueID
  const wrapper = fields[0];
  if (fields.length !== 1 || !wrapper || derTag(wrapper) !== 0xa3) return undefined;
  const list = children(wrapper);
  if (list.length !== 1 || derTag(list[0] as Block) !== 0x30) return undefined;
  let found: Buffer | undefined;
  for (const ext of children(list[0] as Block)) {
    const parts = children(ext);
    if (derTag(ext) !== 0x30 || parts.length < 2 || parts.length > 3 || derTag(parts[0] as Block) !== 0x06) return undefined;
    if (parts.length === 3 && (derTag(parts[1] as Block) !== 0x01 || contents(parts[1] as Block).length !== 1)) return undefined;
    const value = parts[parts.length - 1] as Block;
    if (derTag(value) !== 0x04) return undefined;
    if (contents(parts[0] as Block).toString('hex') === oid) {
      if (found) return undefined; // RFC 5280 §4.2: at most one instance
      found = contents(value);
    }
  }
  return found;
}

function referenceKeyIds(der: Buffer): { aki: string | undefined; ski: string | undefined } | 'undecodable' {
  const akiValue = referenceExtension(der, AKI);
  const skiValue = referenceExtension(der, SKI);
  if (akiValue === 'undecodable' || skiValue === 'undecodable') return 'undecodable';
  let aki: string | undefined;
  if (akiValue) {
    const seq = decode(akiValue);
    if (seq === 'undecodable') return seq;
    const parts = children(seq);
    const keyId = parts[0];
    if (derTag(seq) === 0x30 && keyId && derTag(keyId) === 0x80 && contents(keyId).length > 0 && parts.every((p) => derTag(p) !== undefined)) aki = contents(keyId).toString('hex');
  }
  let ski: string | undefined;
  if (skiValue) {
    const octets = decode(skiValue);
    if (octets === 'undecodable') return octets;
    if (derTag(octets) === 0x04 && contents(octets).length > 0) ski = contents(octets).toString('hex');
  }
  return { aki, ski };
}

let ca: OpensslTestCa;
let certificates: Buffer[];
beforeAll(() => {
  ca = new OpensslTestCa();
  const leaves: (string[] | undefined)[] = [
    ['basicConstraints=critical,CA:FALSE'],
    ['authorityKeyIdentifier=keyid,issuer:always'],
    ['authorityKeyIdentifier=critical,keyid', 'subjectAltName=URI:spiffe://x.test/device/d1'],
    ['subjectKeyIdentifier=none', 'authorityKeyIdentifier=issuer:always'],
    undefined,
  ];
  certificates = [pemCertificates(ca.read('ca.pem'))[0] as Buffer, ...leaves.map((ext, i) => pemCertificates(ca.leaf(`prop${i}`, ext).cert)[0] as Buffer)];
});
afterAll(() => ca.remove());

/** Both readers' answers; the walk must only ever answer lower-case hex or undefined, and never throw. */
function ours(der: Buffer): { aki: string | undefined; ski: string | undefined } {
  const read = settle(() => ({ aki: authorityKeyId(der), ski: subjectKeyId(der) }), () => false);
  if (!read.ok) throw read.error;
  for (const id of [read.value.aki, read.value.ski]) expect(id === undefined || /^(?:[0-9a-f]{2})+$/.test(id)).toBe(true);
  return read.value;
}

describe('authorityKeyId and subjectKeyId, property-based', () => {
  it('agree with asn1js on every certificate openssl made', () => {
    for (const der of certificates) {
      const expected = referenceKeyIds(der);
      expect(expected).not.toBe('undecodable');
      expect(ours(der)).toEqual(expected);
    }
    expect(certificates.filter((c) => ours(c).aki !== undefined).length).toBeGreaterThanOrEqual(3);
  });

  it('never throw or hang on mutated certificates, and agree with asn1js whenever it decodes them', () => {
    let compared = 0;
    fc.assert(
      fc.property(fc.nat(), fc.option(derLengthEdits(), { nil: undefined }), mutations(3, 0), (which, lengthEdit, edits) => {
        fc.pre(lengthEdit !== undefined || edits.length > 0);
        const valid = certificates[which % certificates.length] as Buffer;
        const der = applyMutations(lengthEdit ? applyDerLengthEdit(valid, lengthEdit) : valid, edits);
        const got = ours(der);
        const expected = referenceKeyIds(der);
        if (expected === 'undecodable') return;
        compared++;
        expect(got).toEqual(expected);
      }),
      { numRuns: 800 },
    );
    expect(compared).toBeGreaterThan(0);
  });

  it('never throw or hang on random bytes, and agree with asn1js whenever it decodes them', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const der = Buffer.from(bytes);
        const got = ours(der);
        const expected = referenceKeyIds(der);
        if (expected !== 'undecodable') expect(got).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('read the key identifier of a certificate whose extensions are generated, wherever the AKI sits among them', () => {
    const base = certificates[1] as Buffer;
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 200 }), { maxLength: 4 }),
        fc.nat(),
        fc.boolean(),
        (keyId, skiBytes, fillers, position, critical) => {
          const ext = (oid: string, value: Buffer) => tlv(0x30, Buffer.concat([tlv(0x06, Buffer.from(oid, 'hex')), ...(critical ? [Buffer.of(0x01, 0x01, 0xff)] : []), tlv(0x04, value)]));
          const list = fillers.map((f) => ext('551d11', Buffer.from(f))); // subjectAltName, opaque here
          list.splice(position % (list.length + 1), 0, ext(AKI, tlv(0x30, tlv(0x80, Buffer.from(keyId)))), ext(SKI, tlv(0x04, Buffer.from(skiBytes))));
          const der = withExtensions(base, tlv(0xa3, tlv(0x30, Buffer.concat(list))));
          expect(ours(der)).toEqual({ aki: Buffer.from(keyId).toString('hex'), ski: Buffer.from(skiBytes).toString('hex') });
          expect(referenceKeyIds(der)).toEqual(ours(der));
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** `cert` (a real one) with its TBSCertificate's extensions replaced; the signature no longer matches, which the walk does not read. */
function withExtensions(cert: Buffer, extensions: Buffer): Buffer {
  const top = decode(cert) as Block;
  const tbs = children(top)[0] as Block;
  const fields = children(tbs).filter((f) => derTag(f) !== 0xa3).map((f) => Buffer.from(f.valueBeforeDecodeView));
  const body = Buffer.concat([...fields, extensions]);
  const newTbs = Buffer.concat([Buffer.of(0x30, ...derLength(body.length)), body]);
  const rest = children(top).slice(1).map((f) => Buffer.from(f.valueBeforeDecodeView));
  const all = Buffer.concat([newTbs, ...rest]);
  return Buffer.concat([Buffer.of(0x30, ...derLength(all.length)), all]);
}
