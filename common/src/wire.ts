/** JSON bodies of the provisioning API (docs/reference/http-api.md). PEM strings throughout. */

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
  /** ISO 8601: issuance + 2/3 of the lifetime (the backdating of notBefore not counted; common/rotation.ts). */
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
  /** RFC 5280 §5.3.1 name, when it was revoked on its own (`POST /v1/certificates/:serial/revoke`). */
  revocationReason?: string;
}

export interface DeviceSummary {
  deviceId: string;
  kind: TokenKind;
  createdAt: string;
  certTtlSeconds: number;
  certificates: CertificateSummary[];
  /** Its current (newest) certificate's status, in listings: `active`, `revoked` or `expired`. */
  status?: 'active' | 'revoked' | 'expired';
  currentSerial?: string;
}

/** `GET /v1/devices?limit=&cursor=&status=&expiringBefore=`: one page; `nextCursor` is null on the last. */
export interface DevicePage {
  items: DeviceSummary[];
  nextCursor: string | null;
  /** Same array as `items`, only when the request has no parameters: what callers before paging read. Deprecated. */
  devices?: DeviceSummary[];
}

/** `POST /v1/certificates/:serial/revoke` → 200, also when it was revoked before (`alreadyRevoked`, first reason kept). */
export interface CertificateRevokeResponse {
  serial: string;
  deviceId: string;
  reason: string;
  revokedAt: string;
  alreadyRevoked: boolean;
}

/** One audit record, as `GET /v1/audit` and `tlsfleet audit` give it. */
export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: 'token' | 'issue' | 'renew' | 'revoke';
  subject: string;
  serial?: string;
  notAfter?: string;
  reason?: string;
}

export interface AuditPage {
  items: AuditEntry[];
  nextCursor: string | null;
}

export interface RevokeResponse {
  deviceId: string;
  revoked: string[];
}
