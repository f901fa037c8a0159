import type { ErrorCode } from '@tlsfleet/common';

/** The largest renew request payload, bytes: a CSR of a 4096-bit RSA key is under 2 KiB. */
export const MAX_RENEW_REQUEST_BYTES = 16 * 1024;

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
const CSR_BEGIN = '-----BEGIN CERTIFICATE REQUEST-----';

export type RenewRequest =
  | { readonly ok: true; readonly requestId: string; readonly csr: string }
  /** requestId null when it could not be read. */
  | { readonly ok: false; readonly requestId: string | null; readonly code: ErrorCode; readonly message: string };

/**
 * Reads `{"requestId","csr"}`, cheapest check first, before any work is spent on it: the
 * size, then JSON, then the requestId's shape (1 to 64 of A-Z a-z 0-9 . _ -), then a CSR that
 * is a PEM string. Other keys are ignored. The CSR itself is the renewer's to verify.
 */
export function readRenewRequest(payload: Buffer): RenewRequest {
  if (payload.length > MAX_RENEW_REQUEST_BYTES) return refused(null, 'payload_too_large', `A renew request is at most ${MAX_RENEW_REQUEST_BYTES} bytes.`);
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return refused(null, 'invalid_request', 'The renew request is not JSON.');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return refused(null, 'invalid_request', 'The renew request must be a JSON object {"requestId","csr"}.');
  const { requestId, csr } = json as { requestId?: unknown; csr?: unknown };
  if (typeof requestId !== 'string' || !REQUEST_ID.test(requestId)) return refused(null, 'invalid_request', 'The renew request needs a "requestId" of 1 to 64 characters from A-Z a-z 0-9 . _ -.');
  if (typeof csr !== 'string') return refused(requestId, 'invalid_request', 'The renew request needs a "csr": a PEM certificate signing request.');
  if (!csr.includes(CSR_BEGIN)) return refused(requestId, 'invalid_csr', 'The "csr" is not a PEM certificate signing request.');
  return { ok: true, requestId, csr };
}

function refused(requestId: string | null, code: ErrorCode, message: string): RenewRequest {
  return { ok: false, requestId, code, message };
}
