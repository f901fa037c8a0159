import { isErrorCode, type ErrorCode } from '@tlsfleet/common';

/** One in-band renewal, as the broker hands it on: the session's identity, its certificate's serial, the device's CSR. */
export interface RenewalRequest {
  /** Identity name of the session the request arrived on (a device id or service name). */
  readonly device: string;
  /** Serial (hex) of the certificate that session was authenticated with. */
  readonly serial: string;
  readonly csrPem: string;
}

/**
 * Issues the renewal: resolves with provisioning's `/v1/renew` answer (deviceId,
 * certificate, chain, caBundle, notAfter, renewAfter, serial, notBefore), or rejects with an
 * error carrying a stable `code`, a `message` and, for rate_limited and overloaded,
 * `retryAfterSeconds`. `tlsfleet dev` passes its in-process provisioning; `tlsfleet broker
 * --relay-provisioning` an HTTPS client (relay-client.ts).
 */
export type Renewer = (req: RenewalRequest) => Promise<object>;

/** A refusal as the broker answers it on `.../renewed`. */
export interface RenewalRefusal {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryAfterSeconds?: number;
}

/**
 * What a renewer's rejection says, in stable terms. A code outside the stable list, or an
 * error without one (a bug, a dropped connection), is `internal_error` with a fixed message:
 * the device is told nothing of the broker's internals.
 */
export function refusalOf(err: unknown): RenewalRefusal {
  const e = err as { code?: unknown; message?: unknown; retryAfterSeconds?: unknown } | null | undefined;
  if (!isErrorCode(e?.code)) return { code: 'internal_error', message: 'The renewal could not be completed; retry later or renew over HTTPS.' };
  const message = typeof e.message === 'string' && e.message !== '' ? e.message.slice(0, 500) : e.code;
  const retry = e.retryAfterSeconds;
  return typeof retry === 'number' && Number.isFinite(retry) && retry >= 0 ? { code: e.code, message, retryAfterSeconds: Math.ceil(retry) } : { code: e.code, message };
}
