/** JSON bodies of the provisioning API (DESIGN.md). PEM strings throughout. */

export interface EnrollRequest {
  token: string;
  /** PKCS#10, PEM. */
  csr: string;
}

export interface RenewRequest {
  csr: string;
}

export interface EnrollResponse {
  deviceId: string;
  /** The issued leaf certificate, PEM. */
  certificate: string;
  /** Leaf followed by the issuing intermediate, PEM: what a TLS client presents. */
  chain: string;
  /** Trust anchors to verify the broker and provisioning service, PEM. */
  caBundle: string;
  /** ISO 8601. */
  notAfter: string;
  /** ISO 8601: notBefore + 2/3 of the lifetime. */
  renewAfter: string;
}

export type TokenKind = 'device' | 'service';

export interface CreateTokenRequest {
  deviceId: string;
  ttlSeconds?: number;
  certTtlSeconds?: number;
  kind?: TokenKind;
}

export interface CreateTokenResponse {
  token: string;
  deviceId: string;
  expiresAt: string;
}

export type CertificateStatus = 'valid' | 'revoked' | 'expired';

export interface CertificateSummary {
  serial: string;
  notBefore: string;
  notAfter: string;
  status: CertificateStatus;
  issuedAt: string;
  revokedAt?: string;
}

export interface DeviceSummary {
  deviceId: string;
  kind: TokenKind;
  createdAt: string;
  certTtlSeconds: number;
  certificates: CertificateSummary[];
}

export interface RevokeResponse {
  deviceId: string;
  revoked: string[];
}
