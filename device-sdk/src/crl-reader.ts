import { verify, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import { normalizeSerialHex } from '@tlsfleet/common';

/** What a device needs of a CRL: who may have signed it, what it lists, and whether the signature holds. */
export interface CrlView {
  /** Serial numbers listed as revoked, as normalizeSerialHex writes them. */
  revokedSerials: Set<string>;
  /** True when `issuerKey` signed this CRL. */
  signedBy(issuerKey: KeyObject): boolean;
}

// RFC 5758 §3.2 (ECDSA), RFC 4055 §5 (RSA PKCS#1 v1.5), RFC 8410 §3 (Ed25519).
const HASH_OF_SIGNATURE: Record<string, string | null> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null,
};

/**
 * Reads a DER X.509 v2 CRL (RFC 5280 §5.1): CertificateList ::= SEQUENCE { tbsCertList,
 * signatureAlgorithm, signatureValue }. Only the revoked serials and the signature are
 * read; throws on anything that is not that shape.
 */
export function readCrl(der: Uint8Array): CrlView {
  const parsed = asn1js.fromBER(der);
  if (parsed.offset === -1 || parsed.offset !== der.length) throw new Error('the CRL is not one DER value');
  const list = parsed.result;
  if (!(list instanceof asn1js.Sequence) || list.valueBlock.value.length !== 3) throw new Error('the CRL is not a CertificateList');
  const [tbs, algorithm, signature] = list.valueBlock.value as [asn1js.AsnType, asn1js.AsnType, asn1js.AsnType];
  if (!(tbs instanceof asn1js.Sequence) || !(algorithm instanceof asn1js.Sequence) || !(signature instanceof asn1js.BitString)) throw new Error('the CRL is not a CertificateList');
  const oid = algorithm.valueBlock.value[0];
  if (!(oid instanceof asn1js.ObjectIdentifier)) throw new Error('the CRL has no signature algorithm');
  const algorithmId = oid.valueBlock.toString();
  if (!Object.hasOwn(HASH_OF_SIGNATURE, algorithmId)) throw new Error(`the CRL is signed with an unknown algorithm ${algorithmId}`);
  const tbsBytes = tbs.valueBeforeDecodeView;
  const signatureBytes = signature.valueBlock.valueHexView;
  return {
    revokedSerials: revokedIn(tbs),
    signedBy: (issuerKey) => {
      try {
        return verify(HASH_OF_SIGNATURE[algorithmId]!, tbsBytes, issuerKey, signatureBytes);
      } catch {
        return false;
      }
    },
  };
}

/** TBSCertList (RFC 5280 §5.1.2): [version] signature issuer thisUpdate [nextUpdate] [revokedCertificates] [0] extensions. */
function revokedIn(tbs: asn1js.Sequence): Set<string> {
  const fields = tbs.valueBlock.value;
  let i = fields[0] instanceof asn1js.Integer ? 1 : 0;
  i += 3; // signature, issuer, thisUpdate
  if (fields[i] instanceof asn1js.UTCTime || fields[i] instanceof asn1js.GeneralizedTime) i++;
  const serials = new Set<string>();
  const revoked = fields[i];
  if (!(revoked instanceof asn1js.Sequence)) return serials;
  for (const entry of revoked.valueBlock.value) {
    const serial = entry instanceof asn1js.Sequence ? entry.valueBlock.value[0] : undefined;
    if (!(serial instanceof asn1js.Integer)) throw new Error('a CRL entry has no serial number');
    serials.add(normalizeSerialHex(Buffer.from(serial.valueBlock.valueHexView).toString('hex')));
  }
  return serials;
}
