/** A short reason for a refused TLS handshake, for metrics and logs. */
export function tlsFailureReason(err: Error & { code?: string; reason?: string }): string {
  const text = `${err.code ?? ''} ${err.reason ?? ''} ${err.message}`.toLowerCase();
  if (text.includes('handshake_timeout') || text.includes('timed out') || text.includes('timeout')) return 'timeout';
  if (text.includes('did not return a certificate') || text.includes('peer_did_not_return_a_certificate') || text.includes('no certificate')) return 'no_cert';
  if (text.includes('expired')) return 'expired';
  if (text.includes('unknown ca') || text.includes('unable to get') || text.includes('self signed') || text.includes('self-signed') || text.includes('certificate verify failed') || text.includes('unsupported certificate purpose')) return 'unknown_ca';
  if (text.includes('version') || text.includes('protocol')) return 'protocol';
  return 'other';
}
