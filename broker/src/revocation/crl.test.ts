import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrlError, parseCrl } from './crl.js';
import { OpensslPki } from './openssl-crl.fixture.js';

// High bit set: DER prefixes 00 to keep the integer positive; canonical form drops it.
const HIGH_BIT_SERIAL = 'C3A19F00D4E5F60718293A4B5C6D7E8F';

function crlErrorOf(fn: () => unknown): CrlError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CrlError) return err;
    throw err;
  }
  throw new Error('expected a CrlError');
}

describe('parseCrl', () => {
  let pki: OpensslPki;
  let issuers: X509Certificate[];
  beforeAll(() => {
    pki = OpensslPki.create();
    issuers = pki.issuers();
  });
  afterAll(() => pki?.remove());

  it('verifies a CRL of the intermediate and lists its serials canonically', () => {
    const before = Date.now();
    const crl = parseCrl(pki.crl({ revoked: ['0AB12', HIGH_BIT_SERIAL], number: 42n, hours: 2 }), issuers);
    expect(crl.revoked).toEqual(new Set(['ab12', HIGH_BIT_SERIAL.toLowerCase()]));
    expect(crl.number).toBe(42n);
    expect(crl.issuerSubject).toContain('CN=tlsfleet intermediate CA');
    expect(crl.issuerFingerprint256).toBe(new X509Certificate(pki.pem('intermediate')).fingerprint256);
    expect(Math.abs(crl.thisUpdate.getTime() - before)).toBeLessThan(60_000);
    expect(crl.nextUpdate!.getTime() - crl.thisUpdate.getTime()).toBe(2 * 3600_000);
  });

  it('verifies an empty CRL', () => {
    expect(parseCrl(pki.crl({ number: 0n }), issuers).revoked.size).toBe(0);
  });

  it('verifies an ecdsa-with-SHA384 CRL of the P-384 root', () => {
    const crl = parseCrl(pki.crl({ signer: 'root', revoked: ['01'] }), issuers);
    expect(crl.issuerSubject).toContain('CN=tlsfleet root CA');
    expect([...crl.revoked]).toEqual(['1']);
  });

  it('rejects a CRL with one byte of a serial changed', () => {
    const der = pki.crl({ revoked: ['5EED5EED5EED'] });
    const at = der.indexOf(Buffer.from('5EED5EED5EED', 'hex'));
    expect(at).toBeGreaterThan(0);
    const tampered = Buffer.from(der);
    tampered[at] = 0x5f;
    expect(crlErrorOf(() => parseCrl(tampered, issuers))).toMatchObject({ code: 'crl_invalid', message: expect.stringMatching(/signature does not verify/) });
  });

  it('rejects a CRL signed by another CA with the same subject name', () => {
    const forged = pki.crl({ signer: 'impostor', revoked: ['01'], number: 1000n });
    expect(crlErrorOf(() => parseCrl(forged, issuers)).message).toMatch(/signature does not verify/);
  });

  it('rejects a CRL whose issuer is not in the trust bundle', () => {
    const onlyRoot = issuers.filter((c) => c.subject.includes('root'));
    expect(crlErrorOf(() => parseCrl(pki.crl(), onlyRoot)).message).toMatch(/not a certificate of the trust bundle/);
  });

  it('rejects a CRL signed by a CA certificate without cRLSign (RFC 5280 §6.3.3 (f))', () => {
    expect(crlErrorOf(() => parseCrl(pki.crl({ signer: 'noCrlSign' }), issuers)).message).toMatch(/no cRLSign/);
  });

  it.each<[string, (der: Buffer) => Buffer]>([
    ['empty input', () => Buffer.alloc(0)],
    ['a truncated CRL', (der) => der.subarray(0, der.length - 10)],
    ['trailing bytes', (der) => Buffer.concat([der, Buffer.from([0])])],
    ['a PEM CRL', (der) => Buffer.from(`-----BEGIN X509 CRL-----\n${der.toString('base64')}\n-----END X509 CRL-----\n`)],
    ['a certificate', () => new X509Certificate(pki.pem('intermediate')).raw],
  ])('rejects %s as bad DER', (_name, make) => {
    expect(crlErrorOf(() => parseCrl(make(pki.crl()), issuers)).code).toBe('crl_invalid');
  });

  it('rejects a CRL without a cRLNumber, which rollback protection needs (RFC 5280 §5.2.3)', () => {
    expect(crlErrorOf(() => parseCrl(pki.crl({ number: null }), issuers)).message).toMatch(/no cRLNumber/);
  });

  it('rejects a CRL with a critical extension it cannot process (RFC 5280 §5.2)', () => {
    expect(crlErrorOf(() => parseCrl(pki.crl({ extensions: 'crl_idp' }), issuers)).message).toMatch(/critical extension.*2\.5\.29\.28/);
  });
});
