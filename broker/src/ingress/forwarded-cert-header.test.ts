import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpensslPki } from '../revocation/openssl-crl.fixture.js';
import { forwardedCertificateDer, forwardedFor, ForwardedHeaderError, MAX_FORWARDED_HEADER_BYTES, parseXfcc, type ForwardedCertFormat } from './forwarded-cert-header.js';

let pki: OpensslPki;
let leafPem: string;
let leafDer: Buffer;
let rootPem: string;
beforeAll(() => {
  pki = OpensslPki.create();
  leafPem = pki.clientLeaf('leaf', 'intermediate');
  leafDer = new X509Certificate(leafPem).raw;
  rootPem = pki.pem('root');
});
afterAll(() => pki?.remove());

/** The header's problem code, or 'ok' with the DER when it carries a certificate. */
function outcome(format: ForwardedCertFormat, headers: Record<string, string[]>): string | Buffer {
  try {
    return forwardedCertificateDer(format, headers);
  } catch (err) {
    if (err instanceof ForwardedHeaderError) return err.code;
    throw err;
  }
}
const nginx = (...values: string[]) => outcome('nginx', { 'x-ssl-client-cert': values });
const envoy = (...values: string[]) => outcome('envoy', { 'x-forwarded-client-cert': values });

describe('nginx X-SSL-Client-Cert ($ssl_client_escaped_cert)', () => {
  it('decodes the URL-encoded PEM of the leaf to its DER', () => {
    expect(nginx(encodeURIComponent(leafPem))).toEqual(leafDer);
    // nginx leaves some characters unescaped; only the decoding matters.
    expect(nginx(leafPem.replace(/\n/g, '%0A'))).toEqual(leafDer);
  });

  const hostile: [string, () => string[] | undefined, string][] = [
    ['no header at all', () => undefined, 'no_header'],
    ['the header twice (a client copy beside the proxy\'s)', () => [encodeURIComponent(leafPem), encodeURIComponent(leafPem)], 'duplicate_header'],
    ['a value over 16 KiB', () => [encodeURIComponent(leafPem) + 'A'.repeat(MAX_FORWARDED_HEADER_BYTES)], 'oversized'],
    ['an empty value', () => [''], 'malformed'],
    ['broken percent-encoding', () => ['%E0%A4%A'], 'malformed'],
    ['leaf and intermediate (two blocks)', () => [encodeURIComponent(leafPem + rootPem)], 'malformed'],
    ['text before the block', () => [encodeURIComponent(`junk\n${leafPem}`)], 'malformed'],
    ['a private key block', () => [encodeURIComponent('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')], 'malformed'],
    ['base64 with characters Buffer.from would drop', () => [encodeURIComponent(leafPem.replace(/(-----\n)(.)/, '$1*$2'))], 'malformed'],
    ['an empty certificate block', () => [encodeURIComponent('-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n')], 'malformed'],
    ['a bare base64 body without PEM armour', () => [leafDer.toString('base64')], 'malformed'],
  ];
  it.each(hostile)('refuses %s', (_name, values, code) => {
    const v = values();
    expect(outcome('nginx', v === undefined ? {} : { 'x-ssl-client-cert': v })).toBe(code);
  });

  it('does not read the Envoy header in nginx mode', () => {
    expect(outcome('nginx', { 'x-forwarded-client-cert': [`Cert="${encodeURIComponent(leafPem)}"`] })).toBe('no_header');
  });
});

describe('Envoy x-forwarded-client-cert (XFCC)', () => {
  it('takes Cert from the one element Envoy sets with SANITIZE_SET', () => {
    const cert = encodeURIComponent(leafPem);
    expect(envoy(`By=spiffe://tlsfleet.local/service/envoy;Hash=a1b2;Cert="${cert}";Subject="CN=d1,O=fleet";URI=spiffe://tlsfleet.local/device/d1`)).toEqual(leafDer);
    // Keys are case-insensitive; an unquoted URL-encoded value holds none of , ; = ".
    expect(envoy(`hash=a1b2;cert=${cert}`)).toEqual(leafDer);
    // A SAN per pair: DNS and URI may repeat.
    expect(envoy(`Cert="${cert}";DNS=a.example;DNS=b.example;URI=x;URI=y`)).toEqual(leafDer);
  });

  it('reads quoted values with separators and escaped quotes without splitting them', () => {
    const [element] = parseXfcc('Subject="CN=a\\"b\\",O=c;d";Hash=1');
    expect(element?.get('subject')).toBe('CN=a"b",O=c;d');
    expect(element?.get('hash')).toBe('1');
  });

  const cert = () => encodeURIComponent(leafPem);
  const hostile: [string, () => string[], string][] = [
    ['two elements (a client-sent header a proxy appended to)', () => [`Cert="${cert()}",Cert="${cert()}"`], 'multiple_elements'],
    ['a forged first element and the proxy\'s own second', () => [`Hash=x;Cert="${cert()}",By=y;Hash=z;Cert="${cert()}"`], 'multiple_elements'],
    ['the header twice', () => [`Cert="${cert()}"`, `Cert="${cert()}"`], 'duplicate_header'],
    ['an element without Cert', () => ['By=spiffe://x;Hash=abc;Subject="CN=d1"'], 'malformed'],
    ['Cert twice in one element', () => [`Cert="${cert()}";Cert="${cert()}"`], 'malformed'],
    ['an unterminated quote', () => [`Cert="${cert()}`], 'malformed'],
    ['a trailing backslash in a quote', () => ['Cert="abc\\'], 'malformed'],
    ['text after a closing quote', () => [`Cert="${cert()}"junk`], 'malformed'],
    ['a pair without "="', () => [`Hash;Cert="${cert()}"`], 'malformed'],
    ['an empty key', () => [`=x;Cert="${cert()}"`], 'malformed'],
    ['an empty pair', () => [`Hash=1;;Cert="${cert()}"`], 'malformed'],
    ['a quote inside an unquoted value', () => ['Hash=a"b;Cert=x'], 'malformed'],
    ['an empty value', () => [''], 'malformed'],
    ['a Cert that is not a PEM certificate', () => ['Cert="hello"'], 'malformed'],
    ['a value over 16 KiB', () => [`Cert="${cert()}";Subject="${'a'.repeat(MAX_FORWARDED_HEADER_BYTES)}"`], 'oversized'],
  ];
  it.each(hostile)('refuses %s', (_name, values, code) => {
    expect(envoy(...values())).toBe(code);
  });
});

describe('the client address behind the proxy (X-Forwarded-For)', () => {
  it('is the rightmost entry, the one the trusted proxy appended', () => {
    expect(forwardedFor({ 'x-forwarded-for': ['203.0.113.9'] })).toBe('203.0.113.9');
    expect(forwardedFor({ 'x-forwarded-for': ['10.9.9.9, 1.2.3.4, 198.51.100.7'] })).toBe('198.51.100.7');
    expect(forwardedFor({ 'x-forwarded-for': ['10.9.9.9', '2001:db8::1'] })).toBe('2001:db8::1');
  });

  it('is undefined when absent or not an address', () => {
    expect(forwardedFor({})).toBeUndefined();
    expect(forwardedFor({ 'x-forwarded-for': ['1.2.3.4, evil'] })).toBeUndefined();
    expect(forwardedFor({ 'x-forwarded-for': [''] })).toBeUndefined();
  });
});
