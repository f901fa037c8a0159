import { spawnSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as pkijs from 'pkijs';
import { derToPem, pemToDer, TlsfleetError } from '@tlsfleet/common';
import { buildCrl, type BuildCrlParams } from './crl.js';

const CONFIG = `
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ca_without_ski]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = none
authorityKeyIdentifier = none
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

// A serial whose first byte has the high bit set: DER needs a leading 00 to keep it positive.
const HIGH_BIT_SERIAL = 'C3A19F00D4E5F60718293A4B5C6D7E8F';
const THIS_UPDATE = new Date('2025-06-01T12:00:00.750Z');
// After 2049, so nextUpdate takes the GeneralizedTime path of RFC 5280 §5.1.2.5.
const NEXT_UPDATE = new Date('2099-01-01T00:00:00Z');

let dir: string;
let intermediatePem: string;
let intermediateKey: KeyObject;

function openssl(...args: string[]): { status: number | null; output: string } {
  const result = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function mustOpenssl(...args: string[]): string {
  const { status, output } = openssl(...args);
  if (status !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${output}`);
  return output;
}

function newKey(name: string, curve: string): void {
  mustOpenssl('genpkey', '-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${curve}`, '-out', `${name}.key`);
}

function selfSignedCa(name: string, curve: string, section = 'ca'): void {
  newKey(name, curve);
  mustOpenssl('req', '-x509', '-config', 'ca.cnf', '-extensions', section, '-key', `${name}.key`,
    '-subj', `/O=tlsfleet test/CN=${name}`, '-days', '2', '-out', `${name}.pem`);
}

function issue(name: string, issuer: string, section: string, serial: string): void {
  newKey(name, 'P-256');
  mustOpenssl('req', '-new', '-config', 'ca.cnf', '-key', `${name}.key`, '-subj', `/O=tlsfleet test/CN=${name}`, '-out', `${name}.csr`);
  mustOpenssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-set_serial', `0x${serial}`,
    '-days', '2', '-extfile', 'ca.cnf', '-extensions', section, '-out', `${name}.pem`);
}

async function keyOf(name: string): Promise<KeyObject> {
  return createPrivateKey(await readFile(join(dir, `${name}.key`)));
}

async function writeCrl(name: string, params: Partial<BuildCrlParams>): Promise<Buffer> {
  const der = await buildCrl({
    issuerCertificatePem: intermediatePem,
    issuerKey: intermediateKey,
    entries: [],
    thisUpdate: THIS_UPDATE,
    nextUpdate: NEXT_UPDATE,
    crlNumber: 1n,
    ...params,
  });
  await writeFile(join(dir, `${name}.der`), der);
  await writeFile(join(dir, `${name}.pem`), derToPem(der, 'X509 CRL'));
  return der;
}

async function codeOf(params: Partial<BuildCrlParams>): Promise<string | undefined> {
  try {
    await writeCrl('refused', params);
  } catch (error) {
    return error instanceof TlsfleetError ? error.code : `not a TlsfleetError: ${String(error)}`;
  }
  return undefined;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tlsfleet-crl-'));
  await writeFile(join(dir, 'ca.cnf'), CONFIG);
  selfSignedCa('root', 'P-256');
  issue('intermediate', 'root', 'ca', '02');
  issue('leaf', 'intermediate', 'leaf', HIGH_BIT_SERIAL);
  await writeFile(join(dir, 'chain.pem'), (await readFile(join(dir, 'root.pem'), 'utf8')) + (await readFile(join(dir, 'intermediate.pem'), 'utf8')));
  intermediatePem = await readFile(join(dir, 'intermediate.pem'), 'utf8');
  intermediateKey = await keyOf('intermediate');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('buildCrl with revoked certificates', () => {
  const entries = [
    { serialHex: '01', revokedAt: new Date('2025-05-01T08:00:00Z') },
    { serialHex: '00fedcba98765432', revokedAt: new Date('2025-05-02T09:30:15.999Z') },
    { serialHex: HIGH_BIT_SERIAL.toLowerCase(), revokedAt: new Date('2025-05-03T10:00:00Z') },
  ];
  let der: Buffer;
  let text: string;

  beforeAll(async () => {
    der = await writeCrl('revoked', { entries, crlNumber: 4242n });
    text = mustOpenssl('crl', '-inform', 'DER', '-in', 'revoked.der', '-noout', '-text');
  });

  it('verifies against the intermediate certificate', () => {
    const { status, output } = openssl('crl', '-inform', 'DER', '-in', 'revoked.der', '-CAfile', 'intermediate.pem', '-noout', '-verify');
    expect(status).toBe(0);
    expect(output).toContain('verify OK');
  });

  it('does not verify against another CA with the same name', async () => {
    newKey('impostor', 'P-256');
    mustOpenssl('req', '-x509', '-config', 'ca.cnf', '-extensions', 'ca', '-key', 'impostor.key',
      '-subj', '/O=tlsfleet test/CN=intermediate', '-days', '2', '-out', 'impostor.pem');
    const { output } = openssl('crl', '-inform', 'DER', '-in', 'revoked.der', '-CAfile', 'impostor.pem', '-noout', '-verify');
    expect(output).not.toContain('verify OK');
  });

  it('is a v2 CRL signed with ecdsa-with-SHA256 whose issuer is the intermediate, byte for byte', () => {
    expect(text).toContain('Version 2 (0x1)');
    expect(text).toContain('Signature Algorithm: ecdsa-with-SHA256');
    expect(text).toContain('Issuer: O = tlsfleet test, CN = intermediate');
    const certificate = pkijs.Certificate.fromBER(pemToDer(intermediatePem, 'CERTIFICATE') ?? Buffer.alloc(0));
    expect(der.includes(Buffer.from(certificate.subject.toSchema().toBER()))).toBe(true);
  });

  it('lists the three serials in order, with the revocation times in whole seconds', () => {
    const serials = [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]);
    expect(serials).toEqual(['01', 'FEDCBA98765432', HIGH_BIT_SERIAL]);
    expect(text).toContain('Revocation Date: May  2 09:30:15 2025 GMT');
    expect(text).not.toContain('Reason Code');
  });

  it('encodes a high-bit serial as a positive INTEGER with a leading 00', () => {
    expect(der.includes(Buffer.from(`021100${HIGH_BIT_SERIAL}`, 'hex'))).toBe(true);
  });

  it('carries the CRL number, the update times and the intermediate key identifier', () => {
    expect(text).toMatch(/X509v3 CRL Number: \n\s+4242/);
    expect(text).toContain('Last Update: Jun  1 12:00:00 2025 GMT');
    expect(text).toContain('Next Update: Jan  1 00:00:00 2099 GMT');
    const ski = mustOpenssl('x509', '-in', 'intermediate.pem', '-noout', '-ext', 'subjectKeyIdentifier').split('\n')[1]?.trim();
    expect(ski).toMatch(/^[0-9A-F:]+$/);
    expect(text).toMatch(new RegExp(`X509v3 Authority Key Identifier: \\n\\s+(keyid:)?${ski}\\n`));
  });

  it('uses UTCTime before 2050 and GeneralizedTime from 2050 (RFC 5280 §5.1.2.4)', () => {
    const parsed = mustOpenssl('asn1parse', '-inform', 'DER', '-in', 'revoked.der');
    expect(parsed).toContain('UTCTIME           :250601120000Z');
    expect(parsed).toContain('GENERALIZEDTIME   :20990101000000Z');
  });

  it('makes openssl verify refuse the revoked leaf', () => {
    const { status, output } = openssl('verify', '-crl_check', '-CAfile', 'chain.pem', '-CRLfile', 'revoked.pem', 'leaf.pem');
    expect(status).not.toBe(0);
    expect(output).toContain('certificate revoked');
  });
});

describe('buildCrl with no revoked certificates', () => {
  it('verifies, lists nothing and leaves the leaf valid', async () => {
    const der = await writeCrl('empty', { crlNumber: 0n });
    const verified = openssl('crl', '-inform', 'DER', '-in', 'empty.der', '-CAfile', 'intermediate.pem', '-noout', '-verify');
    expect(verified.output).toContain('verify OK');
    const text = mustOpenssl('crl', '-inform', 'DER', '-in', 'empty.der', '-noout', '-text');
    expect(text).toContain('No Revoked Certificates.');
    expect(text).toMatch(/X509v3 CRL Number: \n\s+0\n/);
    // RFC 5280 §5.1.2.6: the revokedCertificates list is absent, not an empty SEQUENCE.
    expect(der.includes(Buffer.from('3000a0', 'hex'))).toBe(false);
    const leaf = openssl('verify', '-crl_check', '-CAfile', 'chain.pem', '-CRLfile', 'empty.pem', 'leaf.pem');
    expect(leaf.output).toContain('leaf.pem: OK');
  });
});

describe('buildCrl with other issuers', () => {
  it('signs with ecdsa-with-SHA384 for a P-384 key', async () => {
    selfSignedCa('root384', 'P-384');
    await writeCrl('p384-crl', {
      issuerCertificatePem: await readFile(join(dir, 'root384.pem'), 'utf8'),
      issuerKey: await keyOf('root384'),
      entries: [{ serialHex: '0a', revokedAt: THIS_UPDATE }],
    });
    const { output } = openssl('crl', '-inform', 'DER', '-in', 'p384-crl.der', '-CAfile', 'root384.pem', '-noout', '-verify', '-text');
    expect(output).toContain('verify OK');
    expect(output).toContain('Signature Algorithm: ecdsa-with-SHA384');
  });

  it('derives the key identifier from the key when the issuer has no SKI (RFC 5280 §4.2.1.2)', async () => {
    selfSignedCa('bare', 'P-256', 'ca_without_ski');
    const key = await keyOf('bare');
    await writeCrl('bare-crl', { issuerCertificatePem: await readFile(join(dir, 'bare.pem'), 'utf8'), issuerKey: key });
    const { output } = openssl('crl', '-inform', 'DER', '-in', 'bare-crl.der', '-CAfile', 'bare.pem', '-noout', '-verify', '-text');
    expect(output).toContain('verify OK');
    const point = createPublicKey(key).export({ type: 'spki', format: 'der' }).subarray(-65);
    const expected = createHash('sha1').update(point).digest('hex').toUpperCase().match(/../g)?.join(':');
    expect(output).toContain(expected);
  });
});

describe('buildCrl refuses', () => {
  it('a key that does not belong to the issuer certificate', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(await codeOf({ issuerKey: privateKey })).toBe('invalid_request');
  });

  it('a key other than EC P-256 or P-384', async () => {
    expect(await codeOf({ issuerKey: generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey })).toBe('invalid_request');
    expect(await codeOf({ issuerKey: generateKeyPairSync('ed25519').privateKey })).toBe('invalid_request');
    expect(await codeOf({ issuerKey: createPublicKey(intermediateKey) })).toBe('invalid_request');
  });

  it('a PEM that does not hold exactly one certificate', async () => {
    expect(await codeOf({ issuerCertificatePem: await readFile(join(dir, 'chain.pem'), 'utf8') })).toBe('invalid_request');
    expect(await codeOf({ issuerCertificatePem: '' })).toBe('invalid_request');
  });

  it('a serial that is not hex', async () => {
    for (const serialHex of ['', '0x01', '12:34', '-1', 'g1']) {
      expect(await codeOf({ entries: [{ serialHex, revokedAt: THIS_UPDATE }] })).toBe('invalid_request');
    }
  });

  it('a CRL number outside 0 to 2^159 - 1', async () => {
    expect(await codeOf({ crlNumber: -1n })).toBe('invalid_request');
    expect(await codeOf({ crlNumber: 2n ** 159n })).toBe('invalid_request');
    expect(await codeOf({ crlNumber: 2n ** 159n - 1n })).toBeUndefined();
  });
});

describe('buildCrl with revocation reasons (RFC 5280 §5.3.1)', () => {
  it('gives each entry revoked for a reason a non-critical reasonCode, and none to unspecified ones', async () => {
    await writeCrl('reasons', {
      entries: [
        { serialHex: '0a', revokedAt: new Date('2025-05-01T08:00:00Z'), reason: 'keyCompromise' },
        { serialHex: '0b', revokedAt: new Date('2025-05-01T08:00:00Z'), reason: 'unspecified' },
        { serialHex: '0c', revokedAt: new Date('2025-05-01T08:00:00Z') },
        { serialHex: '0d', revokedAt: new Date('2025-05-01T08:00:00Z'), reason: 'aACompromise' },
        { serialHex: '0e', revokedAt: new Date('2025-05-01T08:00:00Z'), reason: 'cessationOfOperation' },
      ],
    });
    const text = mustOpenssl('crl', '-inform', 'DER', '-in', 'reasons.der', '-noout', '-text');
    const entry = (serial: string) => text.slice(text.indexOf(`Serial Number: ${serial}`)).split(/Serial Number:|Signature Algorithm/)[1] ?? '';
    expect(entry('0A')).toMatch(/X509v3 CRL Reason Code:\s*\n\s*Key Compromise/);
    expect(entry('0B')).not.toContain('Reason Code');
    expect(entry('0C')).not.toContain('Reason Code');
    expect(entry('0D')).toMatch(/X509v3 CRL Reason Code:\s*\n\s*AA Compromise/);
    expect(entry('0E')).toMatch(/X509v3 CRL Reason Code:\s*\n\s*Cessation Of Operation/);
    expect(text).not.toMatch(/CRL Reason Code: critical/);
    const verified = openssl('crl', '-inform', 'DER', '-in', 'reasons.der', '-CAfile', 'intermediate.pem', '-noout', '-verify');
    expect(verified.output).toContain('verify OK');
  });
});
