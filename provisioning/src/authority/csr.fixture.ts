import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';

/**
 * A minimal PKCS#10 (RFC 2986) signed by `privateKey` (a fresh P-256 key by default), for
 * tests that need many CSRs fast. Empty subject, no attributes. Test-only.
 */
export function makeTestCsr(privateKey?: KeyObject): { der: Buffer; privateKey: KeyObject } {
  const key = privateKey ?? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const spkiDer = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const info = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 0 }),
      new asn1js.Sequence({ value: [] }),
      asn1js.fromBER(spkiDer).result,
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [] }),
    ],
  });
  const infoDer = Buffer.from(info.toBER());
  const isRsa = key.asymmetricKeyType === 'rsa';
  const signature = sign('sha256', infoDer, isRsa ? key : { key, dsaEncoding: 'der' });
  const oid = new asn1js.ObjectIdentifier({ value: isRsa ? '1.2.840.113549.1.1.11' : '1.2.840.10045.4.3.2' });
  const algorithm = new asn1js.Sequence({ value: isRsa ? [oid, new asn1js.Null()] : [oid] });
  const csr = new asn1js.Sequence({ value: [asn1js.fromBER(infoDer).result, algorithm, new asn1js.BitString({ valueHex: signature })] });
  return { der: Buffer.from(csr.toBER()), privateKey: key };
}
