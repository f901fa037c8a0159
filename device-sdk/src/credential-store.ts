/** Everything a device needs to connect and renew; PEM strings, ISO 8601 times. */
export interface DeviceIdentity {
  deviceId: string;
  /** PKCS#8 PEM. Never sent anywhere, never logged. */
  privateKeyPem: string;
  /** The leaf certificate alone. */
  certificatePem: string;
  /** Leaf then intermediate: what the device presents in TLS. */
  chainPem: string;
  /** Trust anchors for the broker and the provisioning service; refreshed at each renewal. */
  caBundlePem: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  renewAfter: string;
  /** Where renewals go; kept so `device run` needs only the broker URL. */
  provisioningUrl: string;
}

/** A key made for an enrollment that has not been answered yet: retries reuse it. */
export interface PendingEnrollment {
  privateKeyPem: string;
  provisioningUrl: string;
  createdAt: string;
}

/**
 * A key made for renewing the certificate `serial`, not answered yet: retries and a restart
 * after a power cut reuse it, so the service answers the certificate it may already have
 * issued for it (the same old certificate and new key within 10 minutes), where a new key
 * would find the old certificate superseded.
 */
export interface PendingRenewal {
  privateKeyPem: string;
  serial: string;
  createdAt: string;
}

export interface StoredState {
  /** The working identity. */
  current?: DeviceIdentity;
  /** A renewed identity not yet proven by a broker connection. */
  candidate?: DeviceIdentity;
  pendingEnrollment?: PendingEnrollment;
  pendingRenewal?: PendingRenewal;
}

/**
 * Where a device keeps its identity. The file store is the default; a secure element or
 * TPM store implements the same calls. Every call must be atomic: after a crash the
 * store answers either the state before the call or the state after it.
 */
export interface CredentialStore {
  load(): Promise<StoredState>;
  savePendingEnrollment(pending: PendingEnrollment): Promise<void>;
  /** Stores the first identity as current and forgets the pending enrollment. */
  saveEnrolled(identity: DeviceIdentity): Promise<void>;
  /** Stores a renewed identity as candidate and forgets the pending renewal. */
  saveCandidate(identity: DeviceIdentity): Promise<void>;
  /** Keeps the key of a renewal in flight (optional: without it, only retries within one run reuse the key). */
  savePendingRenewal?(pending: PendingRenewal): Promise<void>;
  /**
   * Re-enrollment: stores `identity` as current in place of a revoked or expired one and
   * forgets that one's candidate and pending renewal. Until it returns, the old identity
   * stays whole (optional: without it, a state with an identity cannot enroll again).
   */
  replaceIdentity?(identity: DeviceIdentity): Promise<void>;
  /** The candidate becomes the current identity (the old one is gone). */
  promoteCandidate(): Promise<void>;
  discardCandidate(): Promise<void>;
}
