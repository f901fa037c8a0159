import { Agent, request } from 'node:https';
import { isErrorCode, TlsfleetError } from '@tlsfleet/common';
import { FileCredentialStore, type DeviceIdentity } from '@tlsfleet/device-sdk';
import type { Logger } from 'pino';
import type { Renewer } from './renewer.js';
import { checkRelayOptions, RelayConfigError } from './relay-config.js';
import { RelayIdentity } from './relay-identity.js';

/** Answers are a few KiB of PEM; anything bigger is not provisioning. */
const MAX_ANSWER_BYTES = 256 * 1024;
/** Seconds a device is asked to wait when provisioning cannot be reached. */
const UNREACHABLE_RETRY_SECONDS = 30;

export interface RenewalRelayOptions {
  /** Provisioning's base URL (https://...); requests go to `{url}/v1/relay/renew`. */
  readonly url: string;
  /** A state directory of the device SDK holding this broker's service identity (`tlsfleet device enroll --state DIR`). */
  readonly identityDir: string;
  readonly logger: Logger;
  /** Per relayed request, ms; default 10 s (below the broker's 15 s renewer timeout). */
  readonly timeoutMs?: number;
  /** Injected clock, ms; default Date.now. */
  readonly now?: () => number;
}

export interface RenewalRelay {
  /** For startBroker({ renewer }). */
  readonly renewer: Renewer;
  /** The service identity the relay presents, as read from the state directory. */
  identity(): DeviceIdentity;
  /** The service name and notAfter (ms) of the certificate the relay presents now (startBroker's renewerIdentity). */
  readonly presented: () => { name: string; notAfterMs: number };
  /** Stops the identity's own renewal timer and closes idle connections. */
  close(): void;
}

/**
 * The broker's side of POST /v1/relay/renew: an HTTPS client that presents the service
 * identity stored in `identityDir` (the device SDK's FileCredentialStore) and relays each
 * device's renewal as `{device, serial, csr}`. The identity is renewed by the broker itself
 * at its renewAfter (with jitter and retries) and reloaded, so the relay never expires.
 * Provisioning must name that service with `provisioning --renewal-relay NAME`.
 */
export async function openRenewalRelay(opts: RenewalRelayOptions): Promise<RenewalRelay> {
  const base = checkRelayOptions(opts.url, opts.identityDir);
  const endpoint = new URL(`${base.pathname.replace(/\/$/, '')}/v1/relay/renew`, base.origin);
  let store: FileCredentialStore;
  try {
    store = new FileCredentialStore(opts.identityDir);
  } catch (err) {
    throw new RelayConfigError(`--relay-identity ${opts.identityDir}: ${(err as Error).message}`);
  }
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let agent: Agent | undefined;
  const identity = await RelayIdentity.open(store, base.origin, opts.logger, opts.now ?? Date.now, () => {
    // A renewed identity: new connections present the new certificate.
    agent?.destroy();
    agent = undefined;
  });
  const agentFor = (id: DeviceIdentity): Agent => (agent ??= new Agent({ keepAlive: true, maxSockets: 16, ca: id.caBundlePem, cert: id.chainPem, key: id.privateKeyPem, minVersion: 'TLSv1.2' }));

  const renewer: Renewer = (req) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ device: req.device, serial: req.serial, csr: req.csrPem });
      const post = request(endpoint, { method: 'POST', agent: agentFor(identity.current), timeout: timeoutMs, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > MAX_ANSWER_BYTES) return void res.destroy(new Error('answer too large'));
          chunks.push(chunk);
        });
        res.on('error', (err) => reject(unreachable(err)));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          let json: unknown;
          try {
            json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            json = undefined;
          }
          if (status === 201 && typeof json === 'object' && json !== null) return resolve(json);
          reject(refusal(status, json, res.headers['retry-after'], opts.logger));
        });
      });
      post.on('timeout', () => post.destroy(new Error('timed out')));
      post.on('error', (err) => reject(unreachable(err)));
      post.end(body);
    });

  const unreachable = (err: Error): TlsfleetError => {
    opts.logger.warn({ relay: endpoint.href, err: err.message }, 'renewal relay: provisioning not reachable');
    return new TlsfleetError('overloaded', 'The renewal service cannot be reached: retry later.', { retryAfterSeconds: UNREACHABLE_RETRY_SECONDS });
  };

  opts.logger.info({ relay: endpoint.href, identity: identity.current.deviceId, serial: identity.current.serial, notAfter: identity.current.notAfter }, 'renewal relay ready');
  return {
    renewer,
    identity: () => identity.current,
    presented: () => ({ name: identity.current.deviceId, notAfterMs: Date.parse(identity.current.notAfter) }),
    close: () => {
      identity.close();
      agent?.destroy();
    },
  };
}

/** Provisioning's refusal, as a stable code; an answer without one is `internal_error` (and logged). */
function refusal(status: number, json: unknown, retryAfter: string | string[] | undefined, logger: Logger): TlsfleetError {
  const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const seconds = typeof retryAfter === 'string' && /^\d+$/.test(retryAfter) ? Number(retryAfter) : undefined;
  if (status === 401 || (status === 403 && /renewal relay/i.test(String(error?.message)))) {
    // The broker's own identity was refused: the operator's to fix. The device is told that
    // in-band renewal is not available here, and renews over HTTPS.
    logger.error({ status, code: error?.code, message: error?.message }, 'renewal relay refused by provisioning: is this broker\'s service identity named by provisioning --renewal-relay?');
    return new TlsfleetError('not_found', 'In-band renewal is not available on this broker now: renew over HTTPS (POST /v1/renew).');
  }
  if (isErrorCode(error?.code)) {
    return new TlsfleetError(error.code, typeof error.message === 'string' ? error.message : undefined, { retryAfterSeconds: seconds });
  }
  logger.warn({ status }, 'renewal relay: unexpected answer from provisioning');
  if (status === 429) return new TlsfleetError('rate_limited', undefined, { retryAfterSeconds: seconds });
  if (status === 503) return new TlsfleetError('overloaded', undefined, { retryAfterSeconds: seconds ?? UNREACHABLE_RETRY_SECONDS });
  return new TlsfleetError('internal_error');
}
