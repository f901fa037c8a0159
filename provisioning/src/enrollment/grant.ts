import type { Identity } from '@tlsfleet/common';

/**
 * What an authorization decided, for issuance to enforce: the identity comes from here and
 * never from the CSR, which contributes only its public key.
 */
export interface Grant {
  readonly identity: Identity;
  /** Lifetime of the certificate to issue (the device's profile). */
  readonly certTtlSeconds: number;
  /** Who is recorded as having caused the issuance. */
  readonly actor: string;
}
