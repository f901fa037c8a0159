import { verify, type X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { normalizeSerialHex } from '@tlsfleet/common';

/** A CRL whose signature verified against a certificate of the trust bundle. */
export interface VerifiedCrl {
  /** Subject of the certificate whose key signed the CRL, as node:crypto prints it. */
  readonly issuerSubject: string;
  /** SHA-256 fingerprint of that certificate (node:crypto `fingerprint256`). */
  readonly issuerFingerprint256: string;
  /** cRLNumber (RFC 5280 §5.2.3): a higher number is a newer CRL of the same issuer. */
  readonly number: bigint;
  readonly thisUpdate: Date;
  /** Absent only in CRLs that do not conform to RFC 5280 §5.1.2.5; ours always carry it. */
  readonly nextUpdate: Date | undefined;
  /** Revoked serials, canonical (normalizeSerialHex). */
  readonly revoked: ReadonlySet<string>;
}

/** Bad DER, unknown issuer, bad signature, or a CRL this broker cannot fully process. */
export class CrlError extends Error {
  readonly code = 'crl_invalid';
  /** True when no certificate of the trust bundle has the CRL's issuer name: a reload may fix it. */
  readonly unknownIssuer: boolean;
  constructor(message: string, opts: { unknownIssuer?: boolean } = {}) {
    super(message);
    this.name = 'CrlError';
    this.unknownIssuer = opts.unknownIssuer ?? false;
  }
}

const SIGNATURE_HASHES: Readonly<Record<string, string>> = {
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384', // ecdsa-with-SHA384
};
const ID_CE_KEY_USAGE = '2.5.29.15';
const ID_CE_CRL_NUMBER = '2.5.29.20';
const ID_CE_AUTHORITY_KEY_IDENTIFIER = '2.5.29.35';
/** cRLSign is KeyUsage bit 6: 0x02 in the first octet (RFC 5280 §4.2.1.3). */
const CRL_SIGN = 0x02;

/**
 * Decodes a DER CRL and verifies its signature with node:crypto over the raw tbsCertList
 * bytes, using the key of the issuer certificate whose subject equals the CRL issuer byte
 * for byte (RFC 5280 §5.1.2.3, §6.3.3 (f)). Throws CrlError; never returns an unverified CRL.
 */
export function parseCrl(der: Buffer, issuers: readonly X509Certificate[]): VerifiedCrl {
  const crl = decode(der);
  const algorithm = crl.signatureAlgorithm.algorithmId;
  const hash = SIGNATURE_HASHES[algorithm];
  if (hash === undefined) throw new CrlError(`unsupported CRL signature algorithm ${algorithm}`);
  // RFC 5280 §5.1.1.2: signatureAlgorithm MUST equal the signature field inside tbsCertList.
  if (crl.signature.algorithmId !== algorithm) throw new CrlError('CRL signature algorithms inside and outside tbsCertList differ');

  const issuerName = Buffer.from(crl.issuer.valueBeforeDecode);
  const named = issuers.filter((c) => issuerInfo(c).subject.equals(issuerName));
  if (named.length === 0) throw new CrlError('CRL issuer is not a certificate of the trust bundle', { unknownIssuer: true });
  const mayVerify = named.filter((c) => issuerInfo(c).mayVerifyCrls);
  if (mayVerify.length === 0) throw new CrlError('the certificate of the CRL issuer may not sign CRLs (no cRLSign)');
  const signature = crl.signatureValue.valueBlock;
  if (signature.unusedBits !== 0) throw new CrlError('CRL signature is not a whole number of octets');
  // Several bundle certificates may share a name (a re-keyed CA): any one of them may have signed.
  const signer = mayVerify.find((c) => verifies(hash, crl.tbsView, c, signature.valueHexView));
  if (signer === undefined) throw new CrlError('CRL signature does not verify with the key of its issuer');

  checkExtensions(crl);
  return {
    issuerSubject: signer.subject,
    issuerFingerprint256: signer.fingerprint256,
    number: crlNumber(crl),
    thisUpdate: crl.thisUpdate.value,
    nextUpdate: crl.nextUpdate?.value,
    revoked: new Set((crl.revokedCertificates ?? []).map((entry) => normalizeSerialHex(Buffer.from(entry.userCertificate.valueBlock.valueHexView).toString('hex')))),
  };
}

function decode(der: Buffer): pkijs.CertificateRevocationList {
  const asn1 = asn1js.fromBER(der);
  if (asn1.offset === -1 || asn1.offset !== der.byteLength) throw new CrlError('not a DER CRL: bad encoding or trailing bytes');
  try {
    return new pkijs.CertificateRevocationList({ schema: asn1.result });
  } catch (err) {
    throw new CrlError(`not a DER CRL: ${(err as Error).message}`);
  }
}

function verifies(hash: string, tbs: Uint8Array, issuer: X509Certificate, signature: Uint8Array): boolean {
  try {
    // X.509 carries ECDSA signatures as a DER Ecdsa-Sig-Value (RFC 5758 §3.2).
    return verify(hash, tbs, { key: issuer.publicKey, dsaEncoding: 'der' }, signature);
  } catch {
    return false; // not an EC key, or a malformed signature
  }
}

/**
 * RFC 5280 §5.2 and §5.3: a CRL with a critical extension the reader does not process MUST
 * NOT be used. That rules out delta CRLs, issuing distribution points (partitioned or
 * indirect CRLs) and entries with a certificateIssuer: this broker reads complete CRLs only.
 */
function checkExtensions(crl: pkijs.CertificateRevocationList): void {
  const understood = new Set([ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER]);
  const unknown = crl.crlExtensions?.extensions.find((e) => e.critical && !understood.has(e.extnID));
  if (unknown) throw new CrlError(`CRL has a critical extension this broker cannot process: ${unknown.extnID}`);
  for (const entry of crl.revokedCertificates ?? []) {
    const critical = entry.crlEntryExtensions?.extensions.find((e) => e.critical);
    if (critical) throw new CrlError(`CRL entry has a critical extension this broker cannot process: ${critical.extnID}`);
  }
}

function crlNumber(crl: pkijs.CertificateRevocationList): bigint {
  // RFC 5280 §5.2.3: conforming issuers MUST include it; without it rollback cannot be detected.
  const extension = crl.crlExtensions?.extensions.find((e) => e.extnID === ID_CE_CRL_NUMBER);
  const value: unknown = extension?.parsedValue;
  if (!(value instanceof asn1js.Integer)) throw new CrlError('CRL has no cRLNumber');
  const number = value.toBigInt();
  if (number < 0n) throw new CrlError('CRL has a negative cRLNumber');
  return number;
}

interface IssuerInfo {
  /** The subject Name exactly as encoded in the certificate. */
  readonly subject: Buffer;
  /** RFC 5280 §6.3.3 (f): when keyUsage is present, cRLSign must be set. */
  readonly mayVerifyCrls: boolean;
}

const issuerInfos = new WeakMap<X509Certificate, IssuerInfo>();

function issuerInfo(certificate: X509Certificate): IssuerInfo {
  let info = issuerInfos.get(certificate);
  if (info === undefined) {
    const parsed = pkijs.Certificate.fromBER(certificate.raw);
    const keyUsage: unknown = parsed.extensions?.find((e) => e.extnID === ID_CE_KEY_USAGE)?.parsedValue;
    const usageBits = keyUsage instanceof asn1js.BitString ? keyUsage.valueBlock.valueHexView : undefined;
    info = {
      subject: Buffer.from(parsed.subject.valueBeforeDecode),
      mayVerifyCrls: keyUsage === undefined || ((usageBits?.[0] ?? 0) & CRL_SIGN) !== 0,
    };
    issuerInfos.set(certificate, info);
  }
  return info;
}
