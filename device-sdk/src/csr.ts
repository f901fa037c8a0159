import { sign, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import { derToPem } from '@tlsfleet/common';
import type { DeviceKey } from './keys.js';

const OID_COMMON_NAME = '2.5.4.3';

/** RFC 5758 §3.2 (ECDSA, no parameters) and RFC 4055 §5 (RSA, NULL parameters). */
function signatureAlgorithm(key: KeyObject): { oid: string; hash: 'sha256' | 'sha384'; nullParams: boolean } {
  if (key.asymmetricKeyType === 'rsa') return { oid: '1.2.840.113549.1.1.11', hash: 'sha256', nullParams: true };
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { oid: '1.2.840.10045.4.3.2', hash: 'sha256', nullParams: false };
    if (curve === 'secp384r1') return { oid: '1.2.840.10045.4.3.3', hash: 'sha384', nullParams: false };
  }
  throw new TypeError(`unsupported device key: ${key.asymmetricKeyType} ${key.asymmetricKeyDetails?.namedCurve ?? ''}`);
}

/**
 * A PKCS#10 request (RFC 2986) proving possession of `key`, PEM. The service takes only
 * the public key from it, so the subject is a label for people reading logs and no
 * extensions are requested.
 */
export function createCsr(key: DeviceKey, commonName: string): string {
  const alg = signatureAlgorithm(key.privateKey);
  const spkiDer = key.publicKey.export({ type: 'spki', format: 'der' });
  const spki = asn1js.fromBER(new Uint8Array(spkiDer));
  if (spki.offset === -1) throw new TypeError('cannot re-read the public key');
  const info = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 0 }), // RFC 2986 §4.1: version v1(0)
      new asn1js.Sequence({
        value: [new asn1js.Set({ value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID_COMMON_NAME }), new asn1js.Utf8String({ value: commonName })] })] })],
      }),
      spki.result,
      new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [] }), // attributes [0], empty
    ],
  });
  const infoDer = Buffer.from(info.toBER(false));
  const signature = sign(alg.hash, infoDer, { key: key.privateKey, dsaEncoding: 'der' });
  const request = new asn1js.Sequence({
    value: [
      info,
      new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: alg.oid }), ...(alg.nullParams ? [new asn1js.Null()] : [])] }),
      new asn1js.BitString({ valueHex: new Uint8Array(signature) }),
    ],
  });
  return derToPem(new Uint8Array(request.toBER(false)), 'CERTIFICATE REQUEST');
}
