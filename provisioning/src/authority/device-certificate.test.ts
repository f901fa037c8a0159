import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API before it loads
import * as x509 from '@peculiar/x509';
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derToPem, type Identity } from '@tlsfleet/common';
import type { CaSigner } from './ca-signer.js';
import { parseCsr } from './csr.js';
import { buildDeviceCertificate, randomSerial, type DeviceCertificateParams } from './device-certificate.js';
import { loadCaSigner } from './load-ca-signer.js';
import { buildCrl } from './crl.js';
import { OPENSSL_CA_CONFIG } from './openssl-ca.fixture.js';

const device: Identity = { kind: 'device', name: 'device-42', trustDomain: 'tlsfleet.local' };

let dir: string;
let fileCount = 0;
/** Intermediates (P-256 and P-384) under one P-384 root, and the CA file for openssl verify. */
let p256Issuer: CaSigner;
let p384Issuer: CaSigner;
let caFiles: { p256: string; p384: string };
let p256CertPem: string;

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function writeTemp(name: string, content: string | Buffer): string {
  const file = join(dir, `${fileCount++}-${name}`);
  writeFileSync(file, content);
  return file;
}

function pkcs8(privateKey: KeyObject): string {
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** A CA made with the openssl CLI; the root is self-signed, an intermediate is signed by `parent`. */
function makeCa(subject: string, section: 'root' | 'intermediate', namedCurve: string, parent?: { certFile: string; keyFile: string }) {
  const keyFile = writeTemp('ca.key', pkcs8(generateKeyPairSync('ec', { namedCurve }).privateKey));
  const certFile = join(dir, `${fileCount++}-ca.pem`);
  if (!parent) {
    openssl('req', '-x509', '-new', '-config', 'openssl.cnf', '-key', keyFile, '-subj', subject, '-days', '2', '-extensions', section, '-out', certFile);
  } else {
    const csrFile = join(dir, `${fileCount++}-ca.csr`);
    openssl('req', '-new', '-config', 'openssl.cnf', '-key', keyFile, '-subj', subject, '-out', csrFile);
    openssl('x509', '-req', '-in', csrFile, '-CA', parent.certFile, '-CAkey', parent.keyFile, '-set_serial', '0x7e57', '-days', '2', '-extfile', 'openssl.cnf', '-extensions', section, '-out', certFile);
  }
  return { certFile, keyFile, certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
}

/** A CSR made by the openssl CLI that asks for CA:true, extra names and a hostile subject. */
function hostileCsr(privateKey: KeyObject): Buffer {
  const keyFile = writeTemp('device.key', pkcs8(privateKey));
  const csrFile = join(dir, `${fileCount++}-device.csr`);
  openssl('req', '-new', '-config', 'openssl.cnf', '-key', keyFile, '-subj', '/CN=evil/O=Evil Corp', '-outform', 'DER', '-out', csrFile,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'subjectAltName=URI:spiffe://tlsfleet.local/admin/root,DNS:evil.example,IP:10.0.0.1',
    '-addext', 'extendedKeyUsage=serverAuth,codeSigning');
  return readFileSync(csrFile);
}

async function issue(
  privateKey: KeyObject,
  options: { issuer?: CaSigner; identity?: Identity; notBefore?: Date; notAfter?: Date; serial?: Buffer; crlDistributionPoint?: string } = {},
): Promise<Buffer> {
  const now = Date.now();
  return buildDeviceCertificate({
    issuer: options.issuer ?? p256Issuer,
    subjectPublicKeyDer: await spkiFromHostileCsr(privateKey),
    identity: options.identity ?? device,
    serial: options.serial ?? randomSerial(),
    notBefore: options.notBefore ?? new Date(now - 5 * 60_000),
    notAfter: options.notAfter ?? new Date(now + 7 * 24 * 3600_000),
    crlDistributionPoint: options.crlDistributionPoint,
  });
}

/** The key of a CSR that asks for CA:true, other names and usages: only the key may reach the certificate. */
async function spkiFromHostileCsr(privateKey: KeyObject): Promise<Buffer> {
  return (await parseCsr(hostileCsr(privateKey))).spkiDer;
}

/** `openssl verify -x509_strict -purpose sslclient` against root + intermediate; returns its output. */
function opensslVerify(certificateDer: Buffer, caFile: string): string {
  return openssl('verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', caFile, writeTemp('device.pem', derToPem(certificateDer, 'CERTIFICATE')));
}

function opensslText(certificateDer: Buffer): string {
  return openssl('x509', '-text', '-noout', '-in', writeTemp('device.pem', derToPem(certificateDer, 'CERTIFICATE')));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tlsfleet-device-certificate-'));
  writeFileSync(join(dir, 'openssl.cnf'), OPENSSL_CA_CONFIG);
  const root = makeCa('/O=tlsfleet test/CN=Test Root', 'root', 'secp384r1');
  const p256 = makeCa('/O=tlsfleet test/CN=Test Intermediate P-256', 'intermediate', 'prime256v1', root);
  const p384 = makeCa('/O=tlsfleet test/CN=Test Intermediate P-384', 'intermediate', 'secp384r1', root);
  p256Issuer = loadCaSigner(p256.certPem, p256.keyPem);
  p256CertPem = p256.certPem;
  p384Issuer = loadCaSigner(p384.certPem, p384.keyPem);
  caFiles = { p256: writeTemp('ca-p256.pem', root.certPem + p256.certPem), p384: writeTemp('ca-p384.pem', root.certPem + p384.certPem) };
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('buildDeviceCertificate with openssl', () => {
  it('issues a certificate that openssl verifies as an sslclient under -x509_strict', async () => {
    expect(opensslVerify(await issue(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey), caFiles.p256)).toMatch(/: OK\s*$/);
  });

  it.each([
    ['P-384', () => generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey],
    ['RSA-2048', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey],
    ['Ed25519', () => generateKeyPairSync('ed25519').privateKey],
  ])('issues a verifiable certificate for a %s device key', async (_name, makeKey) => {
    expect(opensslVerify(await issue(makeKey()), caFiles.p256)).toMatch(/: OK\s*$/);
  });

  it('signs with ecdsa-with-SHA384 when the issuing CA key is P-384', async () => {
    const der = await issue(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, { issuer: p384Issuer });
    expect(opensslVerify(der, caFiles.p384)).toMatch(/: OK\s*$/);
    expect(opensslText(der)).toContain('Signature Algorithm: ecdsa-with-SHA384');
  });

  it('shows the documented profile in openssl x509 -text', async () => {
    const text = opensslText(await issue(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey));
    expect(text).toContain('Version: 3 (0x2)');
    expect(text).toMatch(/Subject: CN ?= ?device-42\n/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(text).toMatch(/X509v3 Extended Key Usage: ?\s+TLS Web Client Authentication\n/);
    expect(text).toMatch(/X509v3 Subject Alternative Name: ?\s+URI:spiffe:\/\/tlsfleet.local\/device\/device-42\n/);
    expect(text).toContain('X509v3 Subject Key Identifier');
    expect(text).toContain('X509v3 Authority Key Identifier');
  });
});

describe('buildDeviceCertificate read back with @peculiar/x509', () => {
  it('copies only the public key from a CSR that asks for CA:true, other names and other usages', async () => {
    const privateKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const serial = randomSerial();
    const der = await issue(privateKey, { serial });
    const cert = new x509.X509Certificate(der);

    expect(cert.subject).toBe('CN=device-42');
    expect(cert.issuer).toBe('O=tlsfleet test, CN=Test Intermediate P-256');
    expect(cert.serialNumber).toBe(serial.toString('hex'));
    expect(cert.extensions.map((e) => e.type)).toEqual(['2.5.29.19', '2.5.29.15', '2.5.29.37', '2.5.29.17', '2.5.29.14', '2.5.29.35']);

    const basicConstraints = cert.getExtension(x509.BasicConstraintsExtension);
    expect(basicConstraints?.critical).toBe(true);
    expect(basicConstraints?.ca).toBe(false);
    const keyUsage = cert.getExtension(x509.KeyUsagesExtension);
    expect(keyUsage?.critical).toBe(true);
    expect(keyUsage?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    const extKeyUsage = cert.getExtension(x509.ExtendedKeyUsageExtension);
    expect(extKeyUsage?.critical).toBe(false);
    expect(extKeyUsage?.usages).toEqual([x509.ExtendedKeyUsage.clientAuth]);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.critical).toBe(false); // RFC 5280 §4.2.1.6: the subject is not empty
    expect(san?.names.toJSON()).toEqual([{ type: 'url', value: 'spiffe://tlsfleet.local/device/device-42' }]);
    expect(der.includes('evil')).toBe(false);

    const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
    expect(Buffer.from(cert.publicKey.rawData).equals(spki)).toBe(true);
    const point = spki.subarray(spki.length - 65); // RFC 5280 §4.2.1.2 (1): SHA-1 of the BIT STRING value
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toBe(createHash('sha1').update(point).digest('hex'));
    expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(p256Issuer.keyIdentifier.toString('hex'));

    const issuerCert = new x509.X509Certificate(p256Issuer.certificateDer);
    expect(await cert.verify({ publicKey: issuerCert, signatureOnly: true })).toBe(true);
  });

  it('encodes the common name as a UTF8String and the issuer name byte for byte', async () => {
    const der = await issue(generateKeyPairSync('ed25519').privateKey);
    expect(der.includes(Buffer.concat([Buffer.of(0x0c, device.name.length), Buffer.from(device.name)]))).toBe(true);
    expect(der.includes(p256Issuer.subjectNameDer)).toBe(true);
  });

  it('uses UTCTime before 2050 and GeneralizedTime from 2050, truncated to the second (RFC 5280 §4.1.2.5)', async () => {
    const notBefore = new Date('2049-12-31T23:59:59.999Z');
    const notAfter = new Date('2050-01-01T00:00:00.000Z');
    const der = await issue(generateKeyPairSync('ed25519').privateKey, { notBefore, notAfter });
    expect(der.includes(Buffer.from('\x17\x0d491231235959Z', 'latin1'))).toBe(true);
    expect(der.includes(Buffer.from('\x18\x0f20500101000000Z', 'latin1'))).toBe(true);
    const cert = new X509Certificate(der);
    expect(new Date(cert.validFrom).toISOString()).toBe('2049-12-31T23:59:59.000Z');
    expect(new Date(cert.validTo).toISOString()).toBe('2050-01-01T00:00:00.000Z');
  });

  it('names a service identity by its own SPIFFE ID', async () => {
    const der = await issue(generateKeyPairSync('ed25519').privateKey, { identity: { kind: 'service', name: 'metrics', trustDomain: 'fleet.example' } });
    expect(new X509Certificate(der).subjectAltName).toBe('URI:spiffe://fleet.example/service/metrics');
  });
});

describe('buildDeviceCertificate refuses caller mistakes', () => {
  const spki = createPublicKey(generateKeyPairSync('ed25519').privateKey).export({ type: 'spki', format: 'der' });
  const now = new Date();
  const later = new Date(now.getTime() + 60_000);
  const cases: [string, Partial<DeviceCertificateParams>][] = [
    ['an empty serial', { serial: Buffer.alloc(0) }],
    ['a negative serial', { serial: Buffer.of(0x80, 1, 2, 3, 4, 5, 6, 7) }],
    ['a serial with a redundant leading zero', { serial: Buffer.of(0, 0x7f, 1, 2, 3, 4, 5, 6) }],
    ['a serial of 21 octets', { serial: Buffer.alloc(21, 0x11) }],
    ['notAfter equal to notBefore', { notAfter: now }],
    ['notAfter before notBefore', { notBefore: later, notAfter: now }],
    ['an invalid date', { notAfter: new Date(Number.NaN) }],
    ['a name that is not a device id', { identity: { kind: 'device', name: 'a/b', trustDomain: 'tlsfleet.local' } }],
    ['a trust domain that is not one', { identity: { kind: 'device', name: 'ok', trustDomain: 'Not A Domain' } }],
    ['bytes that are not one SPKI', { subjectPublicKeyDer: Buffer.concat([spki, Buffer.of(0)]) }],
  ];
  it.each(cases)('throws RangeError for %s', (_name, override) => {
    const params = { issuer: p256Issuer, subjectPublicKeyDer: spki, identity: device, serial: randomSerial(), notBefore: now, notAfter: later };
    expect(() => buildDeviceCertificate({ ...params, ...override })).toThrow(RangeError);
  });

  it('accepts a serial with a leading zero that keeps it positive', () => {
    const params = { issuer: p256Issuer, subjectPublicKeyDer: spki, identity: device, notBefore: now, notAfter: later };
    const der = buildDeviceCertificate({ ...params, serial: Buffer.of(0, 0x80, 1, 2, 3, 4, 5, 6, 7) });
    expect(der.includes(Buffer.of(0x02, 9, 0, 0x80, 1, 2, 3, 4, 5, 6, 7))).toBe(true);
    expect(new X509Certificate(der).serialNumber).toBe('8001020304050607');
  });
});

describe('randomSerial', () => {
  it('returns 16 octets whose first octet keeps the INTEGER positive and minimal', () => {
    const serials = Array.from({ length: 1000 }, () => randomSerial());
    for (const s of serials) {
      expect(s.length).toBe(16);
      expect(s[0]).toBeGreaterThanOrEqual(0x40);
      expect(s[0]).toBeLessThanOrEqual(0x7f);
    }
    expect(new Set(serials.map((s) => s.toString('hex'))).size).toBe(1000);
  });

  it.each([
    ['all-zero', 0x00, 0x40],
    ['all-one', 0xff, 0x7f],
  ])('fixes the first octet of %s random bytes', (_name, fill, first) => {
    const serial = randomSerial((size) => Buffer.alloc(size, fill));
    expect(serial[0]).toBe(first);
    expect(serial.subarray(1).every((b) => b === fill)).toBe(true);
  });
});

describe('buildDeviceCertificate with a CRL Distribution Point (RFC 5280 §4.2.1.13)', () => {
  const url = 'https://ca.example.net:8443/v1/crl';

  async function crlFile(revokedSerialHex: string[]): Promise<string> {
    const now = Date.now();
    const der = await buildCrl({
      issuerCertificatePem: p256CertPem,
      issuerKey: p256Issuer.privateKey,
      entries: revokedSerialHex.map((serialHex) => ({ serialHex, revokedAt: new Date(now - 1000), reason: 'keyCompromise' as const })),
      thisUpdate: new Date(now - 60_000),
      nextUpdate: new Date(now + 3600_000),
      crlNumber: 7n,
    });
    return writeTemp('device.crl.pem', derToPem(der, 'X509 CRL'));
  }

  it('names the URL as a fullName URI, not critical, and openssl checks the certificate against that CRL', async () => {
    const serial = randomSerial();
    const der = await issue(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, { serial, crlDistributionPoint: url });
    expect(opensslText(der)).toMatch(new RegExp(`X509v3 CRL Distribution Points: ?\\n\\s+Full Name:\\s+URI:${url.replace(/[.]/g, '\\.')}\\n`));
    expect(new X509Certificate(der).toString()).toBeTruthy();
    const pem = writeTemp('device.pem', derToPem(der, 'CERTIFICATE'));
    expect(openssl('verify', '-x509_strict', '-crl_check', '-CRLfile', await crlFile([]), '-CAfile', caFiles.p256, pem)).toMatch(/: OK\s*$/);
    let refused = '';
    try {
      openssl('verify', '-x509_strict', '-crl_check', '-CRLfile', await crlFile([serial.toString('hex')]), '-CAfile', caFiles.p256, pem);
    } catch (err) {
      refused = String((err as { stderr?: string; stdout?: string }).stdout ?? '') + String((err as { stderr?: string }).stderr ?? '');
    }
    expect(refused).toMatch(/certificate revoked/);
  });

  it('leaves the extension out when no URL is given', async () => {
    expect(opensslText(await issue(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey))).not.toContain('CRL Distribution Points');
  });

  it.each(['ftp://ca.example/crl', 'https://ca.example/cr l', 'https://ca.exämple/crl', ''])('refuses %j as a distribution point', async (bad) => {
    await expect(issue(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, { crlDistributionPoint: bad })).rejects.toThrow(RangeError);
  });
});
