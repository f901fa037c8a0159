import { ERROR_CODES, isErrorCode, type ErrorCode } from '@tlsfleet/common';

/**
 * Codes the SDK adds to the service's stable codes (common/error-codes.ts). Every
 * DeviceError carries one of either list.
 */
export const DEVICE_ERROR_CODES = {
  network: 'The service could not be reached or the connection broke.',
  bad_response: 'The service answered something the SDK does not understand.',
  not_enrolled: 'No identity is stored and no enrollment token was given.',
  expired: 'The device certificate has expired; the device must enroll again.',
  connection_refused: 'The broker refused the connection (CONNACK), or nothing listens at that address and port (ECONNREFUSED).',
  host_not_found: 'The host name of the service does not resolve (ENOTFOUND; EAI_AGAIN when the resolver itself failed).',
  tls_verification_failed: "The service's TLS certificate does not verify against the trust anchors (wrong bootstrap CA, or a host name the certificate does not name).",
  not_connected: 'The device is not connected; QoS 0 messages are not queued.',
  queue_full: 'The offline queue is full.',
  invalid_topic: 'The topic is empty or holds a wildcard, NUL or an empty level.',
  state_corrupt: 'The stored device state cannot be read.',
  closed: 'The device has been closed.',
} as const;

export type DeviceErrorCode = ErrorCode | keyof typeof DEVICE_ERROR_CODES;

/** Stable codes a retry can fix: transient service or network trouble. */
const RETRYABLE = new Set<DeviceErrorCode>(['network', 'rate_limited', 'request_timeout', 'overloaded', 'internal_error', 'bad_response', 'connection_refused', 'not_connected', 'queue_full']);

/** An error with a stable `code` and whether retrying the same call later can succeed. */
export class DeviceError extends Error {
  readonly code: DeviceErrorCode;
  readonly retryable: boolean;
  /** HTTP status when the error came from the provisioning service. */
  readonly status: number | undefined;
  /** From a 429/503 `Retry-After`, in ms. */
  readonly retryAfterMs: number | undefined;
  /**
   * Most likely a configuration error (wrong bootstrap CA, host, port): a fast retry will
   * not fix it. `device enroll` stops at once; a running device backs off slowly.
   */
  readonly configuration: boolean;
  /** The system or OpenSSL code behind it (ECONNREFUSED, ENOTFOUND, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...). */
  readonly systemCode: string | undefined;

  constructor(
    code: DeviceErrorCode,
    message?: string,
    opts: { cause?: unknown; status?: number; retryAfterMs?: number; retryable?: boolean; configuration?: boolean; systemCode?: string } = {},
  ) {
    super(message ?? defaultMessage(code), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DeviceError';
    this.code = code;
    this.retryable = opts.retryable ?? RETRYABLE.has(code);
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
    this.configuration = opts.configuration ?? false;
    this.systemCode = opts.systemCode;
  }
}

function defaultMessage(code: DeviceErrorCode): string {
  return isErrorCode(code) ? ERROR_CODES[code].message : DEVICE_ERROR_CODES[code];
}

/** Wraps anything thrown into a DeviceError, keeping DeviceErrors as they are. */
export function toDeviceError(err: unknown, fallback: DeviceErrorCode = 'network'): DeviceError {
  if (err instanceof DeviceError) return err;
  return new DeviceError(fallback, err instanceof Error ? err.message : String(err), { cause: err });
}
