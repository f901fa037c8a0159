import { isStrictBase64, pemBlocks, TlsfleetError } from '@tlsfleet/common';

const CSR_LABELS = new Set(['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']);

/**
 * The DER PKCS#10 from a simpleenroll / simplereenroll body (RFC 7030 §4.2.1): base64 with
 * or without Content-Transfer-Encoding, with or without line breaks (RFC 8951 §3.2); a PEM
 * CSR is accepted too, as curl users send one. The CSR itself is not parsed here.
 * Throws `payload_too_large` when the body exceeds `maxBytes`, `invalid_csr` when it is not
 * strict base64 once CR, LF, spaces and tabs are removed.
 */
export function decodeEstCsrBody(body: Buffer | string, maxBytes: number): Buffer {
  const size = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  if (size > maxBytes) throw new TlsfleetError('payload_too_large');
  // latin1 maps every byte to one character, so binary DER cannot sneak through as base64.
  const text = typeof body === 'string' ? body : body.toString('latin1');

  if (text.includes('-----BEGIN')) {
    const csrs = pemBlocks(text).filter((block) => CSR_LABELS.has(block.label));
    if (csrs.length !== 1 || csrs[0] === undefined) {
      throw new TlsfleetError('invalid_csr', 'Expected exactly one PEM CERTIFICATE REQUEST block.');
    }
    return csrs[0].der;
  }

  // libest sends 64-character LF lines, others CRLF lines, one line, or a trailing newline.
  const base64 = text.replace(/[\r\n\t ]+/g, '');
  if (!isStrictBase64(base64)) {
    throw new TlsfleetError('invalid_csr', 'The body must be a base64-encoded DER PKCS#10 (RFC 7030 §4.2.1).');
  }
  return Buffer.from(base64, 'base64');
}
