import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TlsfleetError } from '@tlsfleet/common';
import { parseCsr, readCsr } from './csr.js';
import { rsaKeyWithExponent } from '../../../bench/src/provisioning/rsa-key-with-exponent.js';
import { checkKeyPolicy } from './key-policy.js';

let dir: string;
let csrCount = 0;

/** A DER CSR made by the openssl CLI for `privateKey`, asking for whatever `extensions` say. */
function opensslCsr(privateKey: KeyObject, options: { digest?: string; extensions?: string[] } = {}): Buffer {
  const n = csrCount++;
  const keyFile = join(dir, `key-${n}.pem`);
  const csrFile = join(dir, `csr-${n}.der`);
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const args = ['req', '-new', '-config', join(dir, 'openssl.cnf'), '-key', keyFile, '-subj', '/CN=evil', '-outform', 'DER', '-out', csrFile];
  if (options.digest) args.push(`-${options.digest}`);
  for (const ext of options.extensions ?? []) args.push('-addext', ext);
  execFileSync('openssl', args, { stdio: 'pipe' });
  return readFileSync(csrFile);
}

const key = {
  p256: () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey,
  p384: () => generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey,
  p192: () => generateKeyPairSync('ec', { namedCurve: 'prime192v1' }).privateKey,
  secp256k1: () => generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey,
  rsa2048: () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  rsa1024: () => generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey,
  ed25519: () => generateKeyPairSync('ed25519').privateKey,
  ed448: () => generateKeyPairSync('ed448').privateKey,
  dsa: () => generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 }).privateKey,
};

const spkiOf = (privateKey: KeyObject): Buffer => createPublicKey(privateKey).export({ type: 'spki', format: 'der' });

/** What the issuance pipeline answers for a CSR: 'ok' or the error code (parseCsr → checkKeyPolicy). */
async function issuanceOutcome(der: Buffer): Promise<string> {
  try {
    checkKeyPolicy((await parseCsr(der)).publicKey);
    return 'ok';
  } catch (err) {
    if (err instanceof TlsfleetError) return err.code;
    throw err;
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tlsfleet-csr-'));
  await writeFile(join(dir, 'openssl.cnf'), '[req]\ndistinguished_name = dn\n[dn]\n');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseCsr on well-formed CSRs', () => {
  const cases: [string, () => KeyObject, string | undefined][] = [
    ['P-256 with ecdsa-with-SHA256', key.p256, 'sha256'],
    ['P-256 with ecdsa-with-SHA512', key.p256, 'sha512'],
    ['P-384 with ecdsa-with-SHA384', key.p384, 'sha384'],
    ['RSA-2048 with sha256WithRSAEncryption', key.rsa2048, 'sha256'],
    ['Ed25519', key.ed25519, undefined],
  ];
  it.each(cases)('returns the verified public key of a %s CSR', async (_name, makeKey, digest) => {
    const privateKey = makeKey();
    const csr = await parseCsr(opensslCsr(privateKey, digest ? { digest } : {}));
    expect(csr.spkiDer.equals(spkiOf(privateKey))).toBe(true);
    expect(csr.publicKey.export({ type: 'spki', format: 'der' }).equals(spkiOf(privateKey))).toBe(true);
    expect(await issuanceOutcome(opensslCsr(privateKey, digest ? { digest } : {}))).toBe('ok');
  });

  it('returns only the key of a CSR that asks for CA:true and extra names', async () => {
    const privateKey = key.p256();
    const der = opensslCsr(privateKey, {
      extensions: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign', 'subjectAltName=URI:spiffe://tlsfleet.local/admin/root,DNS:evil.example'],
    });
    const csr = await parseCsr(der);
    expect(Object.keys(csr).sort()).toEqual(['publicKey', 'spkiDer']);
    expect(csr.spkiDer.equals(spkiOf(privateKey))).toBe(true);
  });

  it('imports a compressed P-256 point through the SPKI path', async () => {
    const keyFile = join(dir, 'compressed.pem');
    writeFileSync(keyFile, key.p256().export({ type: 'pkcs8', format: 'pem' }));
    execFileSync('openssl', ['ec', '-in', keyFile, '-conv_form', 'compressed', '-out', keyFile], { stdio: 'pipe' });
    const csr = await parseCsr(opensslCsr(createPrivateKey(readFileSync(keyFile))));
    expect(csr.spkiDer.length).toBe(59); // 26-octet header + 33-octet compressed point
    expect(csr.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('does not keep a view of the caller buffer', async () => {
    const der = opensslCsr(key.p256());
    const csr = await parseCsr(der);
    const before = Buffer.from(csr.spkiDer);
    der.fill(0);
    expect(csr.spkiDer.equals(before)).toBe(true);
  });
});

describe('parseCsr on bad CSRs', () => {
  const good = (): Buffer => opensslCsr(key.p256());
  const cases: [string, () => Buffer, string, RegExp?][] = [
    ['garbage', () => Buffer.from('definitely not a DER CSR'), 'invalid_csr'],
    ['an empty body', () => Buffer.alloc(0), 'invalid_csr'],
    ['a CSR missing its last byte', () => good().subarray(0, -1), 'invalid_csr', /truncated/],
    ['half a CSR', () => good().subarray(0, 150), 'invalid_csr', /truncated/],
    ['a CSR with a trailing byte', () => Buffer.concat([good(), Buffer.of(0)]), 'invalid_csr', /trailing/],
    ['a CSR with one signature bit flipped', () => flip(good(), -1), 'invalid_csr', /signature/],
    ['a CSR whose subject was edited after signing', () => replace(good(), Buffer.from('evil'), Buffer.from('evil'.replace('e', 'E'))), 'invalid_csr', /signature/],
    ['a CSR carrying someone else’s public key', () => withOtherKey(), 'invalid_csr', /signature/],
    ['a CSR whose EC point is not on the curve', () => withPointOffCurve(), 'key_rejected', /cannot be imported/],
    ['a CSR with version 1', () => replace(good(), Buffer.of(0x02, 0x01, 0x00), Buffer.of(0x02, 0x01, 0x01)), 'invalid_csr', /version/],
    ['a BER indefinite-length CSR', () => indefiniteLength(good()), 'invalid_csr', /length/],
    ['a CSR with a non-minimal length', () => nonMinimalLength(good()), 'invalid_csr', /length/],
    ['an md5WithRSAEncryption CSR', () => opensslCsr(key.rsa2048(), { digest: 'md5' }), 'invalid_csr', /signature algorithm/],
    ['a sha1WithRSAEncryption CSR', () => opensslCsr(key.rsa2048(), { digest: 'sha1' }), 'invalid_csr', /signature algorithm/],
    ['an ecdsa-with-SHA1 CSR', () => opensslCsr(key.p256(), { digest: 'sha1' }), 'invalid_csr', /signature algorithm/],
    ['an RSA-1024 CSR', () => opensslCsr(key.rsa1024(), { digest: 'sha256' }), 'key_rejected'],
    ['a P-192 CSR', () => opensslCsr(key.p192(), { digest: 'sha256' }), 'key_rejected'],
    ['a secp256k1 CSR', () => opensslCsr(key.secp256k1(), { digest: 'sha256' }), 'key_rejected'],
    ['an Ed448 CSR', () => opensslCsr(key.ed448()), 'key_rejected', /key algorithm/],
    ['a DSA CSR', () => opensslCsr(key.dsa(), { digest: 'sha256' }), 'key_rejected', /key algorithm/],
  ];
  it.each(cases)('refuses %s', async (_name, make, code, message) => {
    const der = make();
    expect(await issuanceOutcome(der)).toBe(code);
    if (message) await expect(parseCsr(der)).rejects.toThrow(message);
  });
});

function flip(der: Buffer, index: number): Buffer {
  const copy = Buffer.from(der);
  const i = index < 0 ? copy.length + index : index;
  copy[i] = (copy[i] as number) ^ 0x01;
  return copy;
}

function replace(der: Buffer, from: Buffer, to: Buffer): Buffer {
  const i = der.indexOf(from);
  if (i < 0 || from.length !== to.length) throw new Error('test bug: pattern not found');
  const copy = Buffer.from(der);
  to.copy(copy, i);
  return copy;
}

/** A CSR signed by one P-256 key whose SPKI was swapped for another P-256 key's. */
function withOtherKey(): Buffer {
  const signer = key.p256();
  return replace(opensslCsr(signer), spkiOf(signer), spkiOf(key.p256()));
}

/** A P-256 CSR with one bit of the point's x coordinate flipped, so (x, y) is off the curve. */
function withPointOffCurve(): Buffer {
  const signer = key.p256();
  const spki = spkiOf(signer);
  return replace(opensslCsr(signer), spki, flip(spki, spki.length - 40));
}

/** The same CSR with its outer SEQUENCE re-encoded with BER's indefinite length (X.690 §8.1.3.6). */
function indefiniteLength(der: Buffer): Buffer {
  const contents = der.subarray(2 + ((der[1] as number) & 0x7f));
  return Buffer.concat([Buffer.of(0x30, 0x80), contents, Buffer.of(0, 0)]);
}

/** The same CSR with its outer length in one octet more than needed. */
function nonMinimalLength(der: Buffer): Buffer {
  const octets = (der[1] as number) & 0x7f;
  return Buffer.concat([Buffer.of(0x30, 0x80 | (octets + 1), 0), der.subarray(2)]);
}

describe('readCsr: the structure alone, no cryptography', () => {
  it.each([
    ['RSA-2048 from Node', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey],
    ['RSA-3072 with a 3000-bit exponent', () => rsaKeyWithExponent(3072, 3000)],
  ])('reads the modulus size and exponent of %s as Node reads them', (_name, make) => {
    const privateKey = make();
    const details = createPublicKey(privateKey).asymmetricKeyDetails!;
    const csr = readCsr(opensslCsr(privateKey, { digest: 'sha256' }));
    if (csr.key.type !== 'rsa') throw new Error('expected an RSA key');
    expect(csr.key.modulusBits).toBe(details.modulusLength);
    // Exponents longer than 64 bits are reported as 2^64: over the policy's cap either way.
    expect(csr.key.exponent).toBe(details.publicExponent! < 2n ** 64n ? details.publicExponent : 2n ** 64n);
  });

  it('names the curve of an EC key from its OID', () => {
    const csr = readCsr(opensslCsr(key.p384()));
    expect(csr.key).toMatchObject({ type: 'ec', curve: { name: 'P-384' } });
    expect(readCsr(opensslCsr(key.secp256k1(), { digest: 'sha256' })).key).toMatchObject({ type: 'ec', curve: undefined, curveOid: '2b8104000a' });
  });

  it('accepts a CSR whose signature does not verify, since it checks none (verifyPossession does)', async () => {
    const der = flip(opensslCsr(key.p256()), -1);
    expect(() => readCsr(der)).not.toThrow();
    await expect(parseCsr(der)).rejects.toThrow(/signature/);
  });
});
