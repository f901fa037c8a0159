/**
 * The stable error codes (docs/reference/http-api.md), with the HTTP status and a default message.
 * One table, so the API, EST, CLI and SDK agree (fastify-style). Codes after
 * `rate_limited` extend the stable list.
 */
export const ERROR_CODES = {
  invalid_token: { status: 401, message: 'The enrollment token is unknown or malformed.' },
  token_used: { status: 409, message: 'The enrollment token has already been used.' },
  token_expired: { status: 401, message: 'The enrollment token has expired.' },
  invalid_csr: { status: 400, message: 'The certificate signing request is malformed or its signature does not verify.' },
  key_rejected: { status: 400, message: 'The public key is refused by policy.' },
  identity_mismatch: { status: 403, message: 'The request does not match the authenticated identity.' },
  unauthorized: { status: 401, message: 'Authentication is required.' },
  forbidden: { status: 403, message: 'This identity may not do that.' },
  revoked: { status: 403, message: 'The certificate has been revoked.' },
  superseded: { status: 403, message: 'This certificate has already been renewed; only the newest certificate of a device may renew.' },
  not_found: { status: 404, message: 'Not found.' },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  rate_limited: { status: 429, message: 'Too many requests; retry later.' },
  request_timeout: { status: 408, message: 'The request did not arrive in time; the connection is closed.' },
  invalid_request: { status: 400, message: 'The request is malformed.' },
  overloaded: { status: 503, message: 'The service is busy; retry later.' },
  internal_error: { status: 500, message: 'Internal error.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** Wire shape of every error answer: `{"error":{"code","message"}}`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** An error with a stable code; `retryAfterSeconds` is set for rate_limited / overloaded. */
export class TlsfleetError extends Error {
  readonly code: ErrorCode;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message ?? ERROR_CODES[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TlsfleetError';
    this.code = code;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}
