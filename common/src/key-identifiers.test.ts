import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorityKeyId, subjectKeyId } from './key-identifiers.js';
import { OpensslTestCa } from './openssl-test-ca.fixture.js';
import { pemCertificates } from './pem.js';

let ca: OpensslTestCa;
beforeAll(() => {
  ca = new OpensslTestCa();
});
afterAll(() => ca.remove());

/** What `openssl x509 -noout -ext authorityKeyIdentifier,subjectKeyIdentifier` says, as lower-case hex. */
function opensslKeyIds(file: string): { aki: string | undefined; ski: string | undefined } {
  const text = ca.openssl('x509', '-noout', '-ext', 'authorityKeyIdentifier,subjectKeyIdentifier', '-in', file);
  const block = (name: string) => new RegExp(`X509v3 ${name} Key Identifier:[^\\n]*\\n((?:    [^\\n]*\\n?)*)`).exec(text)?.[1] ?? '';
  // OpenSSL 3 prints a lone keyid bare, and as "keyid:" beside the issuer name and serial.
  const hexLine = (lines: string) => /^ {4}(?:keyid:)?((?:[0-9A-F]{2}:)*[0-9A-F]{2})$/m.exec(lines)?.[1]?.replace(/:/g, '').toLowerCase();
  return { aki: hexLine(block('Authority')), ski: hexLine(block('Subject')) };
}

const derOf = (pem: string) => pemCertificates(pem)[0] as Buffer;

describe('authorityKeyId and subjectKeyId on certificates made by openssl', () => {
  const cases: [string, string[] | undefined, { aki: boolean; ski: boolean }][] = [
    ['a leaf with openssl\'s default SKI and AKI (keyid)', ['basicConstraints=critical,CA:FALSE'], { aki: true, ski: true }],
    ['a leaf whose AKI carries keyid, issuer name and serial', ['authorityKeyIdentifier=keyid,issuer:always'], { aki: true, ski: true }],
    ['a leaf with a critical AKI (a BOOLEAN before extnValue)', ['authorityKeyIdentifier=critical,keyid'], { aki: true, ski: true }],
    ['a leaf without an AKI', ['authorityKeyIdentifier=none'], { aki: false, ski: true }],
    ['a leaf whose AKI has only the issuer name and serial, no keyIdentifier', ['authorityKeyIdentifier=issuer:always'], { aki: false, ski: true }],
    ['a leaf without SKI or AKI', ['subjectKeyIdentifier=none', 'authorityKeyIdentifier=none'], { aki: false, ski: false }],
    ['an X.509 v1 leaf (no extensions at all)', undefined, { aki: false, ski: false }],
  ];

  it.each(cases)('read %s as openssl does', (_name, extensions, has) => {
    const name = `leaf${Math.random().toString(36).slice(2, 8)}`;
    const { cert } = ca.leaf(name, extensions);
    const expected = opensslKeyIds(`${name}.pem`);
    const der = derOf(cert);
    expect(authorityKeyId(der)).toBe(expected.aki);
    expect(subjectKeyId(der)).toBe(expected.ski);
    expect(authorityKeyId(der) !== undefined).toBe(has.aki);
    expect(subjectKeyId(der) !== undefined).toBe(has.ski);
    if (has.aki) expect(authorityKeyId(der)).toBe(subjectKeyId(derOf(ca.read('ca.pem'))));
  });

  it('read the CA\'s own SKI, and take a Uint8Array as well as a Buffer', () => {
    const der = derOf(ca.read('ca.pem'));
    expect(subjectKeyId(der)).toBe(opensslKeyIds('ca.pem').ski);
    expect(subjectKeyId(new Uint8Array(der))).toBe(subjectKeyId(der));
    expect(authorityKeyId(new Uint8Array(der).subarray(0))).toBe(authorityKeyId(der));
  });

  it('answer undefined for every truncation of a real certificate and for bytes after it', () => {
    const der = derOf(ca.leaf('truncated', ['basicConstraints=critical,CA:FALSE']).cert);
    expect(authorityKeyId(der)).toBeDefined();
    for (let n = 0; n < der.length; n++) {
      expect(authorityKeyId(der.subarray(0, n))).toBeUndefined();
      expect(subjectKeyId(der.subarray(0, n))).toBeUndefined();
    }
    expect(authorityKeyId(Buffer.concat([der, Buffer.of(0)]))).toBeUndefined();
  });

  it('never throw, and answer only hex or undefined, whatever single byte of a real certificate changes', () => {
    const der = derOf(ca.leaf('mutated', ['basicConstraints=critical,CA:FALSE']).cert);
    for (let i = 0; i < der.length; i++) {
      for (const value of [0x00, 0x7f, 0x80, 0x81, 0x84, 0xff, (der[i] as number) ^ 0x01]) {
        const copy = Buffer.from(der);
        copy[i] = value;
        for (const got of [authorityKeyId(copy), subjectKeyId(copy)]) expect(got === undefined || /^[0-9a-f]+$/.test(got)).toBe(true);
      }
    }
  });

  it('answer undefined for garbage', () => {
    for (const bytes of [Buffer.alloc(0), Buffer.of(0x30), Buffer.of(0x30, 0x00), Buffer.of(0x30, 0x80, 0x00, 0x00), Buffer.from('not a certificate'), Buffer.alloc(4096, 0xff)]) {
      expect(authorityKeyId(bytes)).toBeUndefined();
      expect(subjectKeyId(bytes)).toBeUndefined();
    }
  });
});

/** DER TLV with a definite length in its shortest form. */
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const length = n < 0x80 ? Buffer.of(n) : n < 0x100 ? Buffer.of(0x81, n) : Buffer.of(0x82, n >> 8, n & 0xff);
  return Buffer.concat([Buffer.of(tag), length, body]);
}
const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const AKI_OID = tlv(0x06, Buffer.from('551d23', 'hex'));
const KEY_ID = Buffer.from('0102030405060708090a0b0c0d0e0f1011121314', 'hex');
const akiExtension = (value: Buffer = seq(tlv(0x80, KEY_ID))) => seq(AKI_OID, tlv(0x04, value));

/** The shape of a certificate (unsigned: the walk reads structure, not signatures) around these extensions. */
function certificate(extensions: Buffer[], opts: { afterExtensions?: Buffer; extensionsTag?: number } = {}): Buffer {
  const name = seq(tlv(0x31, seq(tlv(0x06, Buffer.from('550403', 'hex')), tlv(0x0c, Buffer.from('x')))));
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.of(2))),
    tlv(0x02, Buffer.of(1)),
    seq(tlv(0x06, Buffer.from('2a8648ce3d040302', 'hex'))),
    name,
    seq(tlv(0x17, Buffer.from('250101000000Z')), tlv(0x17, Buffer.from('350101000000Z'))),
    name,
    seq(seq(tlv(0x06, Buffer.from('2a8648ce3d0201', 'hex'))), tlv(0x03, Buffer.of(0, 4))),
    tlv(opts.extensionsTag ?? 0xa3, seq(...extensions)),
    ...(opts.afterExtensions ? [opts.afterExtensions] : []),
  );
  return seq(tbs, seq(tlv(0x06, Buffer.from('2a8648ce3d040302', 'hex'))), tlv(0x03, Buffer.of(0)));
}

describe('authorityKeyId on hostile structures', () => {
  it('reads the well-formed synthetic certificate the cases below break', () => {
    expect(authorityKeyId(certificate([akiExtension()]))).toBe(KEY_ID.toString('hex'));
  });

  const hostile: [string, Buffer][] = [
    ['two AKI extensions (RFC 5280 §4.2: at most one)', certificate([akiExtension(), akiExtension(seq(tlv(0x80, Buffer.of(9))))])],
    ['an empty keyIdentifier', certificate([akiExtension(seq(tlv(0x80)))])],
    ['a keyIdentifier whose length overruns the AKI', certificate([akiExtension(Buffer.from('3016801501020304050607080910111213141516171819', 'hex'))])],
    ['an AKI SEQUENCE with bytes after it in extnValue', certificate([akiExtension(Buffer.concat([seq(tlv(0x80, KEY_ID)), Buffer.of(0)]))])],
    ['an AKI that is not a SEQUENCE', certificate([akiExtension(tlv(0x80, KEY_ID))])],
    ['a keyIdentifier in long form that could be short (not DER)', certificate([akiExtension(Buffer.concat([Buffer.of(0x30, 0x17, 0x80, 0x81, 0x14), KEY_ID]))])],
    ['a critical flag that is not one byte', certificate([seq(AKI_OID, tlv(0x01, Buffer.of(0xff, 0xff)), tlv(0x04, seq(tlv(0x80, KEY_ID))))])],
    ['an extnValue that is not an OCTET STRING', certificate([seq(AKI_OID, tlv(0x03, seq(tlv(0x80, KEY_ID))))])],
    ['extensions under a tag other than [3]', certificate([akiExtension()], { extensionsTag: 0xa4 })],
    ['an element after the extensions', certificate([akiExtension()], { afterExtensions: tlv(0x05) })],
    ['an extension that is not a SEQUENCE before the AKI', certificate([tlv(0x31, AKI_OID), akiExtension()])],
    ['a high-tag-number tag', certificate([akiExtension()], { afterExtensions: Buffer.of(0x1f, 0x81, 0x00) })],
  ];

  it.each(hostile)('answers undefined for %s', (_name, der) => {
    expect(authorityKeyId(der)).toBeUndefined();
  });

  it('answers undefined for an indefinite length or a length of more than 3 bytes on the certificate', () => {
    const der = certificate([akiExtension()]);
    const body = der.subarray(der[1] === 0x81 ? 3 : 4);
    expect(authorityKeyId(Buffer.concat([Buffer.of(0x30, 0x80), body, Buffer.of(0, 0)]))).toBeUndefined();
    expect(authorityKeyId(Buffer.concat([Buffer.of(0x30, 0x84, 0, 0, body.length >> 8, body.length & 0xff), body]))).toBeUndefined();
    // The same body with its length in three bytes, one of them a leading zero.
    expect(authorityKeyId(Buffer.concat([Buffer.of(0x30, 0x83, 0, body.length >> 8, body.length & 0xff), body]))).toBeUndefined();
  });
});
