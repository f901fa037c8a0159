import type { TLSSocket } from 'node:tls';

/** OpenSSL verification results (socket.authorizationError) by the reason we report. */
const VERIFY_REASONS: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not_yet_valid',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown_ca',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown_ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown_ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown_ca',
  CERT_SIGNATURE_FAILURE: 'unknown_ca',
  CERT_UNTRUSTED: 'unknown_ca',
  INVALID_PURPOSE: 'bad_profile',
};

/**
 * A short reason for a refused TLS handshake, for metrics and logs. With
 * rejectUnauthorized, Node verifies the chain after the handshake and destroys the socket,
 * so the error is a bare "socket hang up" and the real reason is the socket's
 * authorizationError.
 */
export function tlsFailureReason(err: Error & { code?: string; reason?: string }, authorizationError?: unknown): string {
  const verify = authorizationError instanceof Error ? (authorizationError as { code?: string }).code : typeof authorizationError === 'string' ? authorizationError : undefined;
  if (verify) return VERIFY_REASONS[verify] ?? 'unknown_ca';
  const text = `${err.code ?? ''} ${err.reason ?? ''} ${err.message}`.toLowerCase();
  if (text.includes('handshake_timeout') || text.includes('timed out') || text.includes('timeout')) return 'timeout';
  if (text.includes('did not return a certificate') || text.includes('peer_did_not_return_a_certificate') || text.includes('no certificate')) return 'no_cert';
  if (text.includes('expired')) return 'expired';
  if (text.includes('unknown ca') || text.includes('unable to get') || text.includes('self signed') || text.includes('self-signed') || text.includes('certificate verify failed') || text.includes('unsupported certificate purpose')) return 'unknown_ca';
  if (text.includes('version') || text.includes('protocol')) return 'protocol';
  return 'other';
}

/**
 * The client address of a TLS socket Node has already destroyed: a chain refused after the
 * handshake (rejectUnauthorized) reaches 'tlsClientError' without its handle, so its own
 * remoteAddress is gone; the TCP socket it wrapped (Node's TLSSocket `_parent`, read here
 * only) still has the address it cached when the connection was admitted.
 */
export function wrappedAddress(socket: TLSSocket): string | undefined {
  return socket.remoteAddress ?? (socket as TLSSocket & { _parent?: { remoteAddress?: string } | null })._parent?.remoteAddress;
}
