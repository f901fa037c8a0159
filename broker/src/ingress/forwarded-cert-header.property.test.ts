import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settle } from '../../../common/src/test-arbitraries.fixture.js';
import { OpensslPki } from '../revocation/openssl-crl.fixture.js';
import { forwardedCertificateDer, forwardedFor, ForwardedHeaderError, FORWARDED_CERT_HEADER, MAX_FORWARDED_HEADER_BYTES, parseXfcc, type ForwardedCertFormat } from './forwarded-cert-header.js';

// The reference for what a header carries is node's X509Certificate (OpenSSL's PEM and DER
// readers): whatever DER the parser hands on must be the certificate OpenSSL reads from the
// same decoded text, or no certificate for either. The reference for XFCC is Envoy's
// format (elements by ',', pairs by ';', values with , ; = quoted, \" inside quotes),
// generated and read back.

const CODES = new Set(['no_header', 'duplicate_header', 'oversized', 'malformed', 'multiple_elements']);
const typed = (err: unknown) => err instanceof ForwardedHeaderError && CODES.has(err.code);

let pki: OpensslPki;
let certificates: X509Certificate[];
beforeAll(() => {
  pki = OpensslPki.create();
  certificates = [new X509Certificate(pki.clientLeaf('leaf', 'intermediate')), new X509Certificate(pki.pem('root'))];
});
afterAll(() => pki?.remove());

/** The certificate as PEM with any line width, LF or CRLF, and blank space around, as proxies and libraries write it. */
const pemText = fc.record({ which: fc.nat(), width: fc.integer({ min: 4, max: 120 }), crlf: fc.boolean(), lead: fc.constantFrom('', '\n', ' '), trail: fc.constantFrom('', '\n', '\r\n', '\n\n') }).map(({ which, width, crlf, lead, trail }) => {
  const cert = certificates[which % certificates.length] as X509Certificate;
  const eol = crlf ? '\r\n' : '\n';
  const body = cert.raw.toString('base64').match(new RegExp(`.{1,${width}}`, 'g')) ?? [];
  return { der: cert.raw, pem: `${lead}-----BEGIN CERTIFICATE-----${eol}${body.join(eol)}${eol}-----END CERTIFICATE-----${trail}` };
});

/** URL-encoded as nginx or Envoy do, or with any other choice of which characters to escape (lower or upper hex). */
const escaped = fc.tuple(pemText, fc.constantFrom('component', 'newlines', 'random'), fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }), fc.boolean()).map(([p, how, pick, lower]) => {
  let value: string;
  if (how === 'component') value = encodeURIComponent(p.pem);
  else if (how === 'newlines') value = p.pem.replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  else value = [...p.pem].map((c, i) => (pick[i % 64] || c === '%' || c === '\n' || c === '\r' ? `%${c.charCodeAt(0).toString(16).padStart(2, '0')}` : c)).join('');
  return { der: p.der, pem: p.pem, value: lower ? value : value.replace(/%[0-9a-f]{2}/g, (m) => m.toUpperCase()) };
});

/** What OpenSSL reads from `pem`: a certificate's DER, or undefined. */
function opensslReads(pem: string): Buffer | undefined {
  try {
    return new X509Certificate(pem).raw;
  } catch {
    return undefined;
  }
}

function parse(format: ForwardedCertFormat, value: string) {
  return settle(() => forwardedCertificateDer(format, { [FORWARDED_CERT_HEADER[format]]: [value] }), typed);
}

/** Envoy's XFCC quoting: a value holding , ; = or " is double-quoted, \ and " escaped inside. */
function quote(value: string, force: boolean): string {
  return force || /[,;="]/.test(value) ? `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"` : value;
}

const KEYS = ['By', 'Hash', 'Cert', 'Chain', 'Subject', 'URI', 'DNS'];
const xfccValue = fc.stringMatching(/^[ -~]{0,24}$/).filter((v) => !v.startsWith('"') || v.length === 0);
/** One element: pairs with distinct keys, except URI and DNS, which Envoy repeats once per SAN. */
const xfccElement = fc
  .array(fc.record({ key: fc.constantFrom(...KEYS), upper: fc.boolean(), space: fc.boolean(), value: xfccValue, forceQuote: fc.boolean() }), { maxLength: 6 })
  .map((pairs) => pairs.filter((p, i) => ['URI', 'DNS'].includes(p.key) || pairs.findIndex((q) => q.key === p.key) === i))
  .filter((pairs) => pairs.length > 0);

describe('forwardedCertificateDer, property-based', () => {
  it('hands on the DER of the certificate in every nginx header a proxy writes', () => {
    fc.assert(
      fc.property(escaped, ({ der, value }) => {
        expect(parse('nginx', value)).toEqual({ ok: true, value: der });
      }),
      { numRuns: 400 },
    );
  });

  it('hands on the DER of the certificate in every one-element XFCC header, whatever else the element carries', () => {
    fc.assert(
      fc.property(escaped, xfccElement, fc.nat(), fc.boolean(), ({ der, value }, pairs, at, forceQuote) => {
        const others = pairs.filter((p) => p.key !== 'Cert').map((p) => `${p.space ? ' ' : ''}${p.upper ? p.key.toUpperCase() : p.key}=${quote(p.value, p.forceQuote)}`);
        others.splice(at % (others.length + 1), 0, `Cert=${quote(value, forceQuote)}`);
        expect(parse('envoy', others.join(';'))).toEqual({ ok: true, value: der });
      }),
      { numRuns: 400 },
    );
  });

  it('never throws anything but ForwardedHeaderError, never hangs, and hands on only what OpenSSL reads from the same text', () => {
    let compared = 0;
    const nasty = fc.constantFrom('%', '%0', '%zz', '%25', '%0A', '%C3%28', '=', '-', '\n', '\r', ' ', '"', ';', ',', '\\', 'A', '+', '/', '----', 'é', '\u0000');
    fc.assert(
      fc.property(escaped, fc.constantFrom<ForwardedCertFormat>('nginx', 'envoy'), fc.array(fc.record({ at: fc.nat(), cut: fc.nat({ max: 3 }), text: nasty }), { minLength: 1, maxLength: 3 }), ({ value }, format, edits) => {
        let header = format === 'nginx' ? value : `By=spiffe://x.test/broker;Cert="${value}"`;
        for (const { at, cut, text } of edits) {
          const i = at % (header.length + 1);
          header = header.slice(0, i) + text + header.slice(i + cut);
        }
        const got = parse(format, header);
        if (!got.ok) return;
        // Only a header that still decodes hands on anything; its text is then what OpenSSL is asked about.
        let pem: string | undefined;
        try {
          const elements = format === 'envoy' ? parseXfcc(header) : undefined;
          pem = decodeURIComponent(elements ? (elements[0]?.get('cert') as string) : header);
        } catch {
          pem = undefined;
        }
        expect(pem).toBeDefined();
        const der = got.value;
        // The admission refuses DER that is not exactly one certificate (forwarded-cert-admission.ts:
        // OpenSSL reads one object and ignores what follows), so only such DER is compared.
        let exact = false;
        try {
          exact = new X509Certificate(der).raw.equals(der);
        } catch {
          exact = false;
        }
        if (!exact) return;
        compared++;
        // Blank space around the block is ignored by design (String.prototype.trim, which also takes a
        // lone CR that OpenSSL's line-based PEM reader would leave in front of "-----BEGIN").
        const read = opensslReads((pem as string).trim());
        // OpenSSL's PEM reader also wants every body line as long as the first and no blank line
        // (which it takes for the end of encryption headers); RFC 7468 §3 lets parsers be lax about
        // the layout, and this parser is. Laid out as OpenSSL wants, the same base64 must then read
        // as the same certificate.
        const body = (pem as string).trim().replace(/^-----BEGIN CERTIFICATE-----|-----END CERTIFICATE-----$/g, '').replace(/[\r\n]/g, '');
        const laidOut = `-----BEGIN CERTIFICATE-----\n${(body.match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE-----\n`;
        expect(read ?? opensslReads(laidOut)).toEqual(der);
      }),
      { numRuns: 1000 },
    );
    expect(compared).toBeGreaterThan(0);
  });

  it('refuses a header over 16 KiB, a repeated header and a missing one, whatever their text', () => {
    fc.assert(
      fc.property(escaped, fc.constantFrom<ForwardedCertFormat>('nginx', 'envoy'), fc.integer({ min: 1, max: 64 }), ({ value }, format, extra) => {
        const name = FORWARDED_CERT_HEADER[format];
        const big = value + 'A'.repeat(MAX_FORWARDED_HEADER_BYTES - Buffer.byteLength(value) + extra);
        const code = (headers: Record<string, string[]>) => settle(() => forwardedCertificateDer(format, headers), typed);
        expect(code({ [name]: [big] })).toMatchObject({ ok: false, error: { code: 'oversized' } });
        expect(code({ [name]: [value, value] })).toMatchObject({ ok: false, error: { code: 'duplicate_header' } });
        expect(code({ [name]: [] })).toMatchObject({ ok: false, error: { code: 'no_header' } });
        expect(code({})).toMatchObject({ ok: false, error: { code: 'no_header' } });
      }),
      { numRuns: 200 },
    );
  });
});

describe('parseXfcc, property-based', () => {
  it('reads back every header Envoy writes: its elements, keys in lower case, the first of repeated URI and DNS', () => {
    fc.assert(
      fc.property(fc.array(xfccElement, { minLength: 1, maxLength: 4 }), (elements) => {
        const header = elements.map((pairs) => pairs.map((p) => `${p.space ? ' ' : ''}${p.upper ? p.key.toUpperCase() : p.key}=${quote(p.value, p.forceQuote)}`).join(';')).join(',');
        const expected = elements.map((pairs) => {
          const m = new Map<string, string>();
          for (const p of pairs) if (!m.has(p.key.toLowerCase())) m.set(p.key.toLowerCase(), p.value);
          return m;
        });
        const got = settle(() => parseXfcc(header), typed);
        expect(got).toEqual({ ok: true, value: expected });
      }),
      { numRuns: 500 },
    );
  });

  it('never throws anything but ForwardedHeaderError and never hangs, on any text up to the header cap', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.stringMatching(/^[a-zA-Z=;,"\\ ]{0,400}$/), fc.constantFrom('"'.repeat(MAX_FORWARDED_HEADER_BYTES), 'a=\\'.repeat(5000), 'a='.repeat(8000), ';'.repeat(MAX_FORWARDED_HEADER_BYTES))), (header) => {
        settle(() => parseXfcc(header), typed);
        settle(() => forwardedCertificateDer('envoy', { 'x-forwarded-client-cert': [header] }), typed);
        settle(() => forwardedCertificateDer('nginx', { 'x-ssl-client-cert': [header] }), typed);
      }),
      { numRuns: 300 },
    );
  });
});

describe('forwardedFor, property-based', () => {
  const entry = fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom('unknown', '', ' ', 'evil', '1.2.3', '::1%eth0', '300.1.1.1'));
  it('answers the rightmost X-Forwarded-For entry when it is an IP address, across any split into repeated headers', () => {
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 3 }), fc.boolean(), (entries, cuts, spaces) => {
        const sep = spaces ? ', ' : ',';
        const at = [...new Set(cuts.map((c) => c % entries.length))].filter((c) => c > 0).sort((a, b) => a - b);
        const headers = [0, ...at].map((from, i) => entries.slice(from, at[i] ?? entries.length).join(sep));
        const last = (entries[entries.length - 1] as string).trim();
        expect(forwardedFor({ 'x-forwarded-for': headers })).toBe(isIP(last) !== 0 ? last : undefined);
      }),
      { numRuns: 500 },
    );
  });
});
