import { isIP } from 'node:net';
import { isStrictBase64 } from '@tlsfleet/common';

/** Which ingress forwards the client certificate, and so which header carries it. */
export type ForwardedCertFormat = 'nginx' | 'envoy';

export const FORWARDED_CERT_FORMATS: readonly ForwardedCertFormat[] = ['nginx', 'envoy'];

/** The header each ingress sets (lower case, as Node reports header names). */
export const FORWARDED_CERT_HEADER: Readonly<Record<ForwardedCertFormat, string>> = {
  // nginx: `proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;`
  nginx: 'x-ssl-client-cert',
  // Envoy: forward_client_cert_details SANITIZE_SET with `cert: true`.
  envoy: 'x-forwarded-client-cert',
};

/**
 * Largest forwarded header value, bytes: 16 KiB. A P-256 leaf is about 1.3 KiB URL-encoded,
 * an RSA-4096 one about 2.6 KiB; anything near the cap is not a certificate of ours.
 */
export const MAX_FORWARDED_HEADER_BYTES = 16 * 1024;

export type ForwardedHeaderProblem = 'no_header' | 'duplicate_header' | 'oversized' | 'malformed' | 'multiple_elements';

/** A forwarded header that carries no usable certificate; `code` is stable (metrics, logs). */
export class ForwardedHeaderError extends Error {
  readonly code: ForwardedHeaderProblem;
  constructor(code: ForwardedHeaderProblem, message: string) {
    super(message);
    this.name = 'ForwardedHeaderError';
    this.code = code;
  }
}

/**
 * The DER of the client certificate an ingress forwarded in `headers` (Node's
 * `req.headersDistinct`, so a repeated header is seen as such rather than joined).
 * Throws ForwardedHeaderError for a missing, repeated, oversized or malformed header.
 */
export function forwardedCertificateDer(format: ForwardedCertFormat, headers: Readonly<Record<string, readonly string[] | undefined>>): Buffer {
  const name = FORWARDED_CERT_HEADER[format];
  const values = headers[name];
  if (values === undefined || values.length === 0) throw new ForwardedHeaderError('no_header', `no ${name} header`);
  // Two copies mean something besides the edge proxy set one: never pick either.
  if (values.length > 1) throw new ForwardedHeaderError('duplicate_header', `${values.length} ${name} headers`);
  const value = values[0] as string;
  if (Buffer.byteLength(value) > MAX_FORWARDED_HEADER_BYTES) throw new ForwardedHeaderError('oversized', `${name} is over ${MAX_FORWARDED_HEADER_BYTES} bytes`);
  return certificateDerFromEscapedPem(format === 'nginx' ? value : xfccCertificate(value));
}

/**
 * The certificate of the one element of an Envoy `x-forwarded-client-cert` value. More than
 * one element means a proxy appended to a header the client sent (the edge must sanitize),
 * so it is refused rather than trusting either.
 */
export function xfccCertificate(value: string): string {
  const elements = parseXfcc(value);
  if (elements.length !== 1) throw new ForwardedHeaderError('multiple_elements', `x-forwarded-client-cert has ${elements.length} elements; the edge proxy must sanitize it (SANITIZE_SET)`);
  const cert = (elements[0] as XfccElement).get('cert');
  if (cert === undefined) throw new ForwardedHeaderError('malformed', 'x-forwarded-client-cert has no Cert');
  return cert;
}

/** One XFCC element: keys in lower case (they are case-insensitive), values as sent. */
export type XfccElement = ReadonlyMap<string, string>;

/** Keys that Envoy may repeat in one element (one pair per SAN); any other repeated key is refused. */
const REPEATABLE_XFCC_KEYS = new Set(['uri', 'dns']);

/**
 * Envoy's x-forwarded-client-cert: elements separated by `,`, key=value pairs by `;`; a value
 * holding `,`, `;` or `=` is double-quoted, with `\"` for a quote inside it. Strict: an empty
 * key, a pair without `=`, an unterminated quote or text after a closing quote is malformed.
 */
export function parseXfcc(value: string): XfccElement[] {
  const malformed = (why: string, at: number) => new ForwardedHeaderError('malformed', `x-forwarded-client-cert: ${why} at offset ${at}`);
  const elements: Map<string, string>[] = [];
  let element = new Map<string, string>();
  let i = 0;
  for (;;) {
    const keyStart = i;
    while (i < value.length && value[i] !== '=') {
      if (value[i] === ';' || value[i] === ',' || value[i] === '"') throw malformed('a pair without "="', i);
      i++;
    }
    if (i >= value.length) throw malformed('a pair without "="', keyStart);
    const key = value.slice(keyStart, i).trim().toLowerCase();
    if (!/^[a-z]+$/.test(key)) throw malformed('a key that is not a word', keyStart);
    i++;
    let v = '';
    if (value[i] === '"') {
      const open = i++;
      for (;;) {
        if (i >= value.length) throw malformed('an unterminated quoted value', open);
        const c = value[i++] as string;
        if (c === '"') break;
        if (c === '\\') {
          if (i >= value.length) throw malformed('an unterminated quoted value', open);
          v += value[i++];
          continue;
        }
        v += c;
      }
    } else {
      const start = i;
      while (i < value.length && value[i] !== ';' && value[i] !== ',') {
        if (value[i] === '"' || value[i] === '=') throw malformed('an unquoted value holding " or =', i);
        i++;
      }
      v = value.slice(start, i);
    }
    if (element.has(key) && !REPEATABLE_XFCC_KEYS.has(key)) throw malformed(`a repeated ${key}`, keyStart);
    if (!element.has(key)) element.set(key, v);
    if (i >= value.length) break;
    const separator = value[i++];
    if (separator === ',') {
      elements.push(element);
      element = new Map();
    } else if (separator !== ';') {
      throw malformed('text after a quoted value', i - 1);
    }
  }
  elements.push(element);
  return elements;
}

/**
 * URL-encoded PEM of exactly one certificate (nginx's `$ssl_client_escaped_cert`, XFCC's
 * Cert) → its DER. Anything else around or inside the block is malformed.
 */
export function certificateDerFromEscapedPem(escaped: string): Buffer {
  let pem: string;
  try {
    pem = decodeURIComponent(escaped);
  } catch {
    throw new ForwardedHeaderError('malformed', 'the certificate is not valid URL encoding');
  }
  const m = /^-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE-----$/.exec(pem.trim());
  const body = m?.[1]?.replace(/[\r\n]/g, '') ?? '';
  if (!isStrictBase64(body)) throw new ForwardedHeaderError('malformed', 'not exactly one PEM CERTIFICATE block');
  return Buffer.from(body, 'base64');
}

/**
 * The client's address as the trusted proxy saw it: the rightmost `X-Forwarded-For` entry,
 * the one that proxy appended (entries left of it came from the client and prove nothing).
 * Undefined when there is none or it is not an IP address.
 */
export function forwardedFor(headers: Readonly<Record<string, readonly string[] | undefined>>): string | undefined {
  const last = headers['x-forwarded-for']?.join(',').split(',').pop()?.trim();
  return last && isIP(last) !== 0 ? last : undefined;
}
