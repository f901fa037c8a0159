import * as pkijs from 'pkijs';

const ID_DATA = '1.2.840.113549.1.7.1';
const ID_SIGNED_DATA = '1.2.840.113549.1.7.2';

/**
 * A certs-only CMS message (RFC 7030 §4.1.3, RFC 5652 §5): a degenerate SignedData with no
 * signers and no digest algorithms, encapContentInfo id-data without eContent. The
 * certificates keep the given order; put the issued leaf first (RFC 7030 §4.2.3).
 */
export function certsOnlyPkcs7(certsDer: Buffer[]): Buffer {
  const signedData = new pkijs.SignedData({
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: ID_DATA }),
    certificates: certsDer.map((der) => pkijs.Certificate.fromBER(der)),
    digestAlgorithms: [],
    signerInfos: [],
  });
  const contentInfo = new pkijs.ContentInfo({ contentType: ID_SIGNED_DATA, content: signedData.toSchema(true) });
  return Buffer.from(contentInfo.toSchema().toBER());
}

/**
 * The body of an EST response: base64 in newline-terminated lines of 64 characters, as in
 * PEM. RFC 8951 §3 makes clients ignore whitespace, OpenSSL's base64 BIO (libest) reads
 * newline-terminated lines, and LF rather than RFC 2045's CRLF keeps GNU `base64 -d`,
 * which refuses CR, working in shell recipes.
 */
export function base64Body(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return lines.map((line) => `${line}\n`).join('');
}
