import type { KeyObject } from 'node:crypto';

/**
 * The issuing CA as the hot path needs it: everything pre-parsed once at start-up, the
 * private key as a Node KeyObject so no per-call key import happens.
 */
export interface CaSigner {
  /** DER of the issuing CA certificate. */
  readonly certificateDer: Buffer;
  /** DER of the CA certificate's subject Name, used verbatim as the issuer of what it signs. */
  readonly subjectNameDer: Buffer;
  /** The CA's subjectKeyIdentifier, copied into the authorityKeyIdentifier of what it signs. */
  readonly keyIdentifier: Buffer;
  readonly privateKey: KeyObject;
  /** The CA key's curve; P-256 signs with ecdsa-with-SHA256, P-384 with ecdsa-with-SHA384. */
  readonly curve: 'P-256' | 'P-384';
}
