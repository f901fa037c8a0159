import { execFileSync, spawnSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as asn1js from 'asn1js';
import fc from 'fast-check';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TlsfleetError } from '@tlsfleet/common';
import { allDer, children, contents, decode, derTag, tlv, type Block } from '../../../common/src/der-reference.fixture.js';
import { applyDerLengthEdit, applyMutations, derLengthEdits, derTree, mutations, settle, settleAsync, type DerLengthEdit, type Mutation } from '../../../common/src/test-arbitraries.fixture.js';
import { makeTestCsr } from './csr.fixture.js';
import { parseCsr, readCsr, type CsrParts } from './csr.js';

// Reference: asn1js decodes the CSR, RFC 2986 §4 and the algorithm RFCs say what must be
// where (DER headers checked on every element the reader reads, X.690 §10.1), pkijs reads
// the RSA key, OpenSSL (through node:crypto) imports the key and checks the signature. The
// openssl CLI judges a sample. Runs where asn1js cannot decode the whole input only check
// that the reader refuses or accepts with its typed errors and does not hang.

const typed = (err: unknown) => err instanceof TlsfleetError && (err.code === 'invalid_csr' || err.code === 'key_rejected');

const SIGNATURES: Record<string, { hash: string | null; type: string }> = {
  '2a8648ce3d040302': { hash: 'sha256', type: 'ec' },
  '2a8648ce3d040303': { hash: 'sha384', type: 'ec' },
  '2a8648ce3d040304': { hash: 'sha512', type: 'ec' },
  '2a864886f70d01010b': { hash: 'sha256', type: 'rsa' },
  '2a864886f70d01010c': { hash: 'sha384', type: 'rsa' },
  '2a864886f70d01010d': { hash: 'sha512', type: 'rsa' },
  '2b6570': { hash: null, type: 'ed25519' },
};
const KEYS: Record<string, string> = { '2a8648ce3d0201': 'ec', '2a864886f70d010101': 'rsa', '2b6570': 'ed25519' };
const CURVES: Record<string, { name: string; coordinateBytes: number }> = {
  '2a8648ce3d030107': { name: 'P-256', coordinateBytes: 32 },
  '2b81040022': { name: 'P-384', coordinateBytes: 48 },
};

/** What readCsr must answer for `der`, read independently; 'refused' for anything RFC 2986 and DER rule out. */
function referenceRead(der: Buffer): CsrParts | 'refused' | 'undecodable' {
  const top = decode(der);
  if (top === 'undecodable') return top;
  const tags = (list: Block[], expected: number[]) => list.length === expected.length && list.every((b, i) => derTag(b) === expected[i]);
  const outer = children(top);
  if (derTag(top) !== 0x30 || !tags(outer, [0x30, 0x30, 0x03])) return 'refused';
  const [info, signatureAlgorithm, signatureBits] = outer as [Block, Block, Block];
  // CertificationRequestInfo ::= SEQUENCE { version INTEGER { v1(0) }, subject, subjectPKInfo, attributes [0] } (attributes may be omitted)
  const fields = children(info);
  if (!tags(fields, [0x02, 0x30, 0x30, 0xa0].slice(0, Math.max(3, fields.length))) || !contents(fields[0] as Block).equals(Buffer.of(0))) return 'refused';
  if (!fields.every(allDer)) return 'refused'; // X.690 §10.1 inside the subject and attributes too, though nothing there is read
  const spki = fields[2] as Block;
  const spkiParts = children(spki);
  if (!tags(spkiParts, [0x30, 0x03])) return 'refused';
  const [algorithm, keyBits] = spkiParts as [Block, Block];
  const algorithmParts = children(algorithm);
  if (!algorithmParts[0] || derTag(algorithmParts[0]) !== 0x06) return 'refused';
  const type = KEYS[contents(algorithmParts[0]).toString('hex')];
  if (!type) return 'refused';
  // RFC 3279 §2.3.1: rsaEncryption's parameters are exactly NULL; RFC 8410 §3: Ed25519's are absent.
  const nullParameters = algorithmParts.length === 2 && derTag(algorithmParts[1] as Block) === 0x05 && contents(algorithmParts[1] as Block).length === 0;
  if (type === 'rsa' && !nullParameters) return 'refused';
  if (type === 'ed25519' && algorithmParts.length !== 1) return 'refused';
  const wholeOctets = (bits: Block) => contents(bits).length >= 2 && contents(bits)[0] === 0; // X.690 §8.6.2.2
  let key: CsrParts['key'];
  if (type === 'ed25519') {
    key = { type }; // the key itself is OpenSSL's to judge, at import (proof of possession)
  } else {
    if (!wholeOctets(keyBits)) return 'refused';
    const point = contents(keyBits).subarray(1);
    if (type === 'rsa') {
      const rsa = decode(Buffer.from(point));
      if (rsa === 'undecodable') return rsa;
      if (derTag(rsa) !== 0x30 || !tags(children(rsa), [0x02, 0x02])) return 'refused';
      // Both integers positive (X.690 §8.3.3: two's complement, so the first octet's top bit clear) and non-zero.
      if (children(rsa).some((i) => contents(i).length === 0 || (contents(i)[0] as number) & 0x80 || contents(i).every((b) => b === 0))) return 'refused';
      const parsed = new pkijs.RSAPublicKey({ schema: rsa }); // its integers come without the sign octet
      const magnitude = (i: asn1js.Integer) => {
        const bytes = Buffer.from(i.valueBlock.valueHexView);
        return bytes.subarray(bytes.findIndex((b) => b !== 0));
      };
      const n = magnitude(parsed.modulus);
      const e = magnitude(parsed.publicExponent);
      const modulusBits = n.length * 8 - Math.clz32(n[0] as number) + 24;
      // readCsr's convention: an exponent over 64 bits is reported as 2^64 (over policy's cap either way).
      key = { type, modulusBits, exponent: e.length > 8 ? 2n ** 64n : BigInt(`0x${e.toString('hex')}`) };
    } else {
      // RFC 5480 §2.1.1: ECParameters is a namedCurve OID, nothing else.
      if (!tags(algorithmParts, [0x06, 0x06])) return 'refused';
      const curveOid = contents(algorithmParts[1] as Block).toString('hex');
      key = { type: 'ec', curve: CURVES[curveOid] as never, curveOid, point };
    }
  }
  // The signature AlgorithmIdentifier's parameters are absent or NULL (RFC 5758 §3.2, RFC 4055 §5).
  const sigParts = children(signatureAlgorithm);
  const nullParams = sigParts.length === 2 && derTag(sigParts[1] as Block) === 0x05 && contents(sigParts[1] as Block).length === 0;
  if (!sigParts[0] || derTag(sigParts[0]) !== 0x06 || (sigParts.length !== 1 && !nullParams)) return 'refused';
  const signer = SIGNATURES[contents(sigParts[0]).toString('hex')];
  if (!signer || signer.type !== type || !wholeOctets(signatureBits)) return 'refused';
  return {
    spkiDer: Buffer.from(spki.valueBeforeDecodeView),
    key,
    signedDer: Buffer.from(info.valueBeforeDecodeView),
    signature: contents(signatureBits).subarray(1),
    hash: signer.hash,
  };
}

/** What parseCsr must answer: the reference read, then OpenSSL's import of the SPKI and its verdict on the signature. */
function referenceParse(der: Buffer): Buffer | 'refused' | 'undecodable' {
  const read = referenceRead(der);
  if (typeof read === 'string') return read;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: read.spkiDer, format: 'der', type: 'spki' });
  } catch {
    return 'refused';
  }
  let valid = false;
  try {
    valid = verify(read.hash, read.signedDer, key, read.signature);
  } catch {
    valid = false;
  }
  return valid ? read.spkiDer : 'refused';
}

const plain = (parts: CsrParts) => ({ ...parts, key: { ...parts.key, ...('curve' in parts.key ? { curve: parts.key.curve ?? null } : {}) } });

let dir: string;
let signers: { key: KeyObject; sigAlg: Buffer; hash: string | null }[];
let bases: { der: Buffer; signer: number }[];

function opensslCsr(privateKey: KeyObject, name: string, args: string[]): Buffer {
  writeFileSync(join(dir, `${name}.key`), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  execFileSync('openssl', ['req', '-new', '-config', join(dir, 'openssl.cnf'), '-key', join(dir, `${name}.key`), '-outform', 'DER', '-out', join(dir, `${name}.der`), ...args], { stdio: 'pipe' });
  return readFileSync(join(dir, `${name}.der`));
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tlsfleet-csr-property-'));
  writeFileSync(join(dir, 'openssl.cnf'), '[req]\ndistinguished_name = dn\n[dn]\n');
  // A few keys, made once: the properties vary the encodings, not the keys.
  const keys = [
    { key: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, digest: '-sha256' },
    { key: generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey, digest: '-sha384' },
    { key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, digest: '-sha256' },
    { key: generateKeyPairSync('ed25519').privateKey, digest: undefined },
  ];
  bases = [];
  signers = keys.map(({ key, digest }, i) => {
    const der = opensslCsr(key, `k${i}`, ['-subj', `/CN=device-${i}/O=fleet`, '-addext', 'subjectAltName=URI:spiffe://x.test/device/d1', ...(digest ? [digest] : [])]);
    bases.push({ der, signer: i });
    bases.push({ der: opensslCsr(key, `k${i}-bare`, ['-subj', '/', ...(digest ? [digest] : [])]), signer: i });
    const top = derTree(der)[0]?.children ?? [];
    const sigAlg = der.subarray(top[1]?.start, top[1]?.end);
    const hash = digest ? digest.slice(1) : null;
    return { key, sigAlg: Buffer.from(sigAlg), hash };
  });
  // Hand-built ones: an empty subject, and no attributes at all for one of them.
  bases.push({ der: makeTestCsr(keys[0]?.key).der, signer: 0 });
  const noAttributes = withInfo(bases[0] as { der: Buffer; signer: number }, (info) => {
    const [el] = derTree(info);
    const last = el?.children?.at(-1);
    return tlv(0x30, info.subarray(el?.value, last?.start));
  });
  bases.push({ der: noAttributes, signer: 0 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A CSR whose certificationRequestInfo is `edit(info)` of `base`, signed again with its key: the signature verifies over whatever the edit made. */
function withInfo(base: { der: Buffer; signer: number }, edit: (info: Buffer) => Buffer): Buffer {
  const top = derTree(base.der)[0]?.children ?? [];
  const info = edit(base.der.subarray(top[0]?.start, top[0]?.end));
  const { key, sigAlg, hash } = signers[base.signer] as (typeof signers)[number];
  const signature = sign(hash, info, key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'der' } : key);
  return tlv(0x30, info, sigAlg, tlv(0x03, Buffer.of(0), signature));
}

/** `openssl req -verify`'s verdict; OpenSSL 3.0 exits 0 after a failed -verify too, and says it on stderr. */
function opensslVerdict(der: Buffer, name: string): 'ok' | 'refused' {
  const file = join(dir, `${name}.der`);
  writeFileSync(file, der);
  const run = spawnSync('openssl', ['req', '-inform', 'DER', '-in', file, '-noout', '-verify'], { encoding: 'utf8' });
  return /self-signature verify OK/.test(run.stderr) ? 'ok' : 'refused';
}

/** The certificationRequestInfo of a CSR readCsr accepted, with an empty subject and empty attributes. */
function emptied(der: Buffer): Buffer {
  const info = derTree(der)[0]?.children?.[0]?.children ?? [];
  const [version, , spki] = info.map((e) => der.subarray(e.start, e.end));
  return tlv(0x30, version as Buffer, Buffer.of(0x30, 0), spki as Buffer, Buffer.of(0xa0, 0));
}

interface Case {
  base: number;
  resign: boolean;
  lengthEdit: DerLengthEdit | undefined;
  edits: Mutation[];
}

/** Mutants of the valid CSRs: edited outright (the signature then breaks, mostly), or edited inside and signed again. */
const cases: fc.Arbitrary<Case> = fc
  .record({ base: fc.nat(), resign: fc.boolean(), lengthEdit: fc.option(derLengthEdits(), { nil: undefined }), edits: mutations(3, 0) })
  .filter((c) => c.lengthEdit !== undefined || c.edits.length > 0);

function mutant(c: Case): Buffer {
  const base = bases[c.base % bases.length] as { der: Buffer; signer: number };
  const edit = (der: Buffer) => applyMutations(c.lengthEdit ? applyDerLengthEdit(der, c.lengthEdit) : der, c.edits);
  return c.resign ? withInfo(base, edit) : edit(base.der);
}

describe('readCsr and parseCsr, property-based', () => {
  it('accept every valid CSR, with what the reference reads from it', async () => {
    for (const { der } of bases) {
      const expected = referenceRead(der);
      expect(typeof expected, der.toString('hex')).toBe('object');
      expect(plain(readCsr(der))).toEqual(plain(expected as CsrParts));
      const parsed = await parseCsr(der);
      expect(parsed.spkiDer.equals(referenceParse(der) as Buffer)).toBe(true);
    }
  });

  it('refuse mutated CSRs only with invalid_csr or key_rejected, never hang, and agree with the reference on what they accept', async () => {
    let accepted = 0;
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const der = mutant(c);
        const read = settle(() => readCsr(der), typed);
        const parsed = await settleAsync(() => parseCsr(der), typed);
        const expectedRead = referenceRead(der);
        const expectedParse = referenceParse(der);
        if (!read.ok) expect(parsed.ok).toBe(false); // parseCsr is readCsr, then proof of possession
        if (expectedRead === 'undecodable') return;
        compared++;
        if (expectedRead === 'refused') expect(read).toMatchObject({ ok: false });
        else expect(read.ok && plain(read.value)).toEqual(plain(expectedRead));
        if (expectedParse === 'refused') {
          expect(parsed).toMatchObject({ ok: false });
        } else {
          accepted++;
          expect(parsed.ok && parsed.value.spkiDer).toEqual(expectedParse);
          // The SPKI goes into the certificate verbatim: it must be the key's own encoding.
          expect(parsed.ok && parsed.value.publicKey.export({ type: 'spki', format: 'der' })).toEqual(expectedParse);
        }
      }),
      { numRuns: 600 },
    );
    expect(compared).toBeGreaterThan(0);
    expect(accepted).toBeGreaterThan(0);
  });

  it('refuse random bytes with invalid_csr, and bytes behind a CSR header with a typed error, without hanging', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.boolean(), (bytes, framed) => {
        const der = framed ? tlv(0x30, tlv(0x30, tlv(0x02, Buffer.of(0)), bytes)) : Buffer.from(bytes);
        const read = settle(() => readCsr(der), typed);
        const expected = referenceRead(der);
        if (expected !== 'undecodable') expect(read.ok).toBe(expected !== 'refused');
      }),
      { numRuns: 500 },
    );
  });

  it('agree with `openssl req -verify` and `openssl asn1parse` on a sample of mutated, re-signed CSRs', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const der = mutant({ ...c, resign: true });
        const parsed = await settleAsync(() => parseCsr(der), typed);
        const name = `sample-${n++}`;
        const verdict = opensslVerdict(der, name);
        // What readCsr takes, openssl's general DER reader reads whole, to the last byte.
        if (settle(() => readCsr(der), typed).ok) {
          const parse = spawnSync('openssl', ['asn1parse', '-inform', 'DER', '-in', join(dir, `${name}.der`)], { encoding: 'utf8' });
          expect(parse.status).toBe(0);
          expect(parse.stdout).toMatch(new RegExp(`^ +0:d=0 +hl=\\d l= *${der.length - (der[1] === 0x82 ? 4 : der[1] === 0x81 ? 3 : 2)} cons: SEQUENCE`));
        }
        // openssl reads the subject and attributes against their ASN.1 types (X.501 Name, RFC 2985
        // attributes); tlsfleet never reads them, beyond their DER. So where openssl alone refuses,
        // it must be for them: the same CSR with both emptied, signed again, it must verify.
        if (parsed.ok && verdict !== 'ok') expect(opensslVerdict(withInfo(bases[c.base % bases.length] as { der: Buffer; signer: number }, () => emptied(der)), `emptied-${n}`)).toBe('ok');
        // openssl also takes BER, other algorithms and versions: only a verdict on a CSR the reference calls in-profile DER must match ours.
        if (verdict === 'ok' && referenceRead(der) !== 'refused' && referenceRead(der) !== 'undecodable') expect(parsed.ok).toBe(true);
      }),
      { numRuns: 40 },
    );
  });
});

describe('readCsr on counterexamples the properties found', () => {

  /** A P-256 CSR around `subject` and `attributes`, properly signed: only their insides are wrong. */
  function signedCsr(subject: Buffer, attributes: Buffer): Buffer {
    const { key, sigAlg, hash } = signers[0] as (typeof signers)[number];
    const info = tlv(0x30, tlv(0x02, Buffer.of(0)), subject, createPublicKey(key).export({ type: 'spki', format: 'der' }), attributes);
    return tlv(0x30, info, sigAlg, tlv(0x03, Buffer.of(0), sign(hash, info, { key, dsaEncoding: 'der' })));
  }

  it.each([
    // Found as a Name whose AttributeTypeAndValue length grew by one: openssl cannot read the CSR.
    ['a subject whose SET runs past the Name', Buffer.from('30023105', 'hex'), Buffer.from('a000', 'hex')],
    ['a subject with a BER indefinite length inside', Buffer.from('3006318030000000', 'hex'), Buffer.from('a000', 'hex')],
    ['attributes whose SEQUENCE runs past them', Buffer.from('3000', 'hex'), Buffer.from('a002307f', 'hex')],
    ['attributes with a non-minimal length inside', Buffer.from('3000', 'hex'), Buffer.from('a00430810100', 'hex')],
  ])('refuses %s with invalid_csr, as openssl refuses to read it', (_name, subject, attributes) => {
    const der = signedCsr(subject, attributes);
    expect(opensslVerdict(der, 'regression')).toBe('refused');
    expect(() => readCsr(der)).toThrow(expect.objectContaining({ code: 'invalid_csr' }));
  });

  /** A CSR of signer `i` whose SPKI is `edit(spki)`, properly signed: only the key's encoding is odd. */
  function withSpki(i: number, edit: (spki: Buffer) => Buffer): Buffer {
    const { key, sigAlg, hash } = signers[i] as (typeof signers)[number];
    const spki = edit(createPublicKey(key).export({ type: 'spki', format: 'der' }));
    const info = tlv(0x30, tlv(0x02, Buffer.of(0)), Buffer.from('3000', 'hex'), spki, Buffer.from('a000', 'hex'));
    return tlv(0x30, info, sigAlg, tlv(0x03, Buffer.of(0), sign(hash, info, key)));
  }

  it.each([
    // Found as rsaEncryption's NULL parameters flipped to an empty OCTET STRING, which OpenSSL imports.
    ['rsaEncryption parameters other than NULL', 2, (spki: Buffer) => Buffer.from(spki.toString('hex').replace('2a864886f70d0101010500', '2a864886f70d0101010400'), 'hex')],
    ['rsaEncryption without parameters', 2, (spki: Buffer) => derWithout(spki, '2a864886f70d0101010500', '2a864886f70d010101')],
    ['Ed25519 with NULL parameters', 3, (spki: Buffer) => derWithout(spki, '06032b6570', '06032b65700500')],
  ] as const)('refuses a CSR whose key has %s with key_rejected, since its SPKI is copied into the certificate', async (_name, signer, edit) => {
    const der = withSpki(signer, edit);
    expect(() => readCsr(der)).toThrow(expect.objectContaining({ code: 'key_rejected' }));
    await expect(parseCsr(withSpki(signer, (spki) => spki))).resolves.toMatchObject({ spkiDer: expect.any(Buffer) });
  });

  it('still accepts the same CSR with a well-formed subject and attributes', async () => {
    const der = signedCsr(Buffer.from('300f310d300b06035504030c0464657631', 'hex'), Buffer.from('a000', 'hex'));
    await expect(parseCsr(der)).resolves.toMatchObject({ spkiDer: expect.any(Buffer) });
  });
});

/** `spki` with the hex run `from` of its AlgorithmIdentifier replaced by `to`, both SEQUENCEs re-encoded around it. */
function derWithout(spki: Buffer, from: string, to: string): Buffer {
  const tree = derTree(spki)[0];
  const algorithm = tree?.children?.[0];
  const key = tree?.children?.[1];
  const algorithmBody = spki.subarray(algorithm?.value, algorithm?.end).toString('hex');
  if (!algorithmBody.includes(from)) throw new Error(`no ${from} in the AlgorithmIdentifier`);
  const edited = tlv(0x30, Buffer.from(algorithmBody.replace(from, to), 'hex'));
  return tlv(0x30, edited, spki.subarray(key?.start, key?.end));
}
