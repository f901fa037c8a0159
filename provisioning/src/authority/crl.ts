import { createHash, createPublicKey, sign, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { pemToDer, TlsfleetError } from '@tlsfleet/common';
import type { RevocationReason } from '../storage/store.js';
import { REVOCATION_REASON_CODES } from './revocation-reason.js';

export interface CrlEntry {
  /** Serial number of the revoked certificate, hex in any case; leading zeros are ignored. */
  serialHex: string;
  revokedAt: Date;
  /** RFC 5280 §5.3.1; `unspecified` or absent leaves the reasonCode extension out, as the RFC asks. */
  reason?: RevocationReason | undefined;
}

export interface BuildCrlParams {
  /** The issuing CA certificate (one PEM block); its subject becomes the CRL issuer byte for byte. */
  issuerCertificatePem: string;
  /** The CA's private key: EC P-256 signs with ecdsa-with-SHA256, P-384 with ecdsa-with-SHA384. */
  issuerKey: KeyObject;
  /** Revoked certificates, listed in this order; an empty list gives an empty CRL. */
  entries: CrlEntry[];
  thisUpdate: Date;
  nextUpdate: Date;
  /** cRLNumber, increasing with every CRL of this issuer (RFC 5280 §5.2.3): 0 ≤ n < 2^159. */
  crlNumber: bigint;
}

const SIGNATURE_ALGORITHMS: Record<string, { hash: string; oid: string }> = {
  prime256v1: { hash: 'sha256', oid: '1.2.840.10045.4.3.2' },
  secp384r1: { hash: 'sha384', oid: '1.2.840.10045.4.3.3' },
};
const ID_CE_SUBJECT_KEY_IDENTIFIER = '2.5.29.14';
const ID_CE_CRL_NUMBER = '2.5.29.20';
const ID_CE_AUTHORITY_KEY_IDENTIFIER = '2.5.29.35';
const ID_CE_CRL_REASONS = '2.5.29.21';

/**
 * An X.509 v2 CRL (RFC 5280 §5) in DER, signed by the issuer key, with the
 * authorityKeyIdentifier and cRLNumber extensions, and a reasonCode on each entry revoked
 * for a stated reason.
 *
 * Built from pkijs/asn1js parts and signed with Node's crypto.sign on the KeyObject itself:
 * the issuer Name is copied from the certificate without re-encoding, the key needs no
 * WebCrypto import, and no global crypto provider or reflect-metadata is involved.
 */
export async function buildCrl(params: BuildCrlParams): Promise<Buffer> {
  const certificateDer = pemToDer(params.issuerCertificatePem, 'CERTIFICATE');
  if (certificateDer === undefined) {
    throw new TlsfleetError('invalid_request', 'issuerCertificatePem must hold exactly one certificate.');
  }
  const issuer = pkijs.Certificate.fromBER(certificateDer);
  const algorithm = signatureAlgorithm(params.issuerKey);
  const issuerSpki = Buffer.from(issuer.subjectPublicKeyInfo.toSchema().toBER());
  if (!createPublicKey(params.issuerKey).export({ type: 'spki', format: 'der' }).equals(issuerSpki)) {
    throw new TlsfleetError('invalid_request', 'issuerKey does not belong to the issuer certificate.');
  }
  if (params.crlNumber < 0n || params.crlNumber >= 2n ** 159n) {
    throw new TlsfleetError('invalid_request', 'crlNumber must fit in 20 octets (RFC 5280 §5.2.3).');
  }

  const signatureAlgorithmId = new pkijs.AlgorithmIdentifier({ algorithmId: algorithm.oid });
  const extensions = new pkijs.Extensions({
    extensions: [
      // RFC 5280 §5.2.1: MUST be present, key identifier method, non-critical.
      extension(
        ID_CE_AUTHORITY_KEY_IDENTIFIER,
        new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: keyIdentifier(issuer) }) }).toSchema(),
      ),
      // RFC 5280 §5.2.3: MUST be present, non-critical.
      extension(ID_CE_CRL_NUMBER, asn1js.Integer.fromBigInt(params.crlNumber)),
    ],
  });
  const revoked = params.entries.map((entry) =>
    new pkijs.RevokedCertificate({
      userCertificate: serialNumber(entry.serialHex),
      revocationDate: time(entry.revokedAt),
      ...reasonExtension(entry.reason),
    }).toSchema(),
  );
  // TBSCertList, field by field as in RFC 5280 §5.1.
  const tbsCertList = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 1 }), // v2: the CRL has extensions (§5.1.2.1)
      signatureAlgorithmId.toSchema(),
      issuer.subject.toSchema(), // the original encoding, so it matches the certificate's subject (§5.1.2.3)
      time(params.thisUpdate).toSchema(),
      time(params.nextUpdate).toSchema(),
      // §5.1.2.6: with no revoked certificates the list is absent, not empty.
      ...(revoked.length > 0 ? [new asn1js.Sequence({ value: revoked })] : []),
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [extensions.toSchema()] }),
    ],
  });

  const tbs = Buffer.from(tbsCertList.toBER());
  // Node returns a DER Ecdsa-Sig-Value for EC keys, as X.509 wants it (RFC 5758 §3.2).
  const signature = await new Promise<Buffer>((resolve, reject) =>
    sign(algorithm.hash, tbs, params.issuerKey, (error, value) => (error ? reject(error) : resolve(value))),
  );
  const certificateList = new asn1js.Sequence({
    value: [tbsCertList, signatureAlgorithmId.toSchema(), new asn1js.BitString({ valueHex: signature })],
  });
  return Buffer.from(certificateList.toBER());
}

/** RFC 5280 §5.3.1: reasonCode, non-critical, ENUMERATED; absent rather than unspecified (0). */
function reasonExtension(reason: RevocationReason | undefined): { crlEntryExtensions?: pkijs.Extensions } {
  const code = reason === undefined ? 0 : REVOCATION_REASON_CODES[reason];
  if (code === 0) return {};
  return { crlEntryExtensions: new pkijs.Extensions({ extensions: [extension(ID_CE_CRL_REASONS, new asn1js.Enumerated({ value: code }))] }) };
}

function signatureAlgorithm(key: KeyObject): { hash: string; oid: string } {
  const curve = key.type === 'private' && key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined;
  const algorithm = curve === undefined ? undefined : SIGNATURE_ALGORITHMS[curve];
  if (algorithm === undefined) throw new TlsfleetError('invalid_request', 'issuerKey must be an EC P-256 or P-384 private key.');
  return algorithm;
}

function keyIdentifier(issuer: pkijs.Certificate): Uint8Array {
  const ski = issuer.extensions?.find((e) => e.extnID === ID_CE_SUBJECT_KEY_IDENTIFIER);
  if (ski !== undefined) return new Uint8Array((ski.parsedValue as asn1js.OctetString).valueBlock.valueHexView);
  // No SKI to match: derive one as RFC 5280 §4.2.1.2 method (1) does, SHA-1 of the key bits.
  return createHash('sha1').update(issuer.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView).digest();
}

function extension(extnID: string, value: asn1js.BaseBlock): pkijs.Extension {
  return new pkijs.Extension({ extnID, critical: false, extnValue: value.toBER() });
}

function serialNumber(serialHex: string): asn1js.Integer {
  if (!/^[0-9a-fA-F]+$/.test(serialHex)) {
    throw new TlsfleetError('invalid_request', `Serial ${JSON.stringify(serialHex)} is not hex.`);
  }
  // fromBigInt encodes a positive value, prefixing 00 when the high bit is set (X.690 §8.3).
  return asn1js.Integer.fromBigInt(BigInt(`0x${serialHex}`));
}

function time(date: Date): pkijs.Time {
  // Whole seconds (RFC 5280 §4.1.2.5.2 forbids fractions); UTCTime through 2049,
  // GeneralizedTime from 2050 (RFC 5280 §5.1.2.4).
  const value = new Date(Math.floor(date.getTime() / 1000) * 1000);
  return new pkijs.Time({ type: value.getUTCFullYear() < 2050 ? 0 : 1, value });
}
