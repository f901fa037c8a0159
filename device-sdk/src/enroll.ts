import { Backoff } from './backoff.js';
import type { CredentialStore, DeviceIdentity } from './credential-store.js';
import { createCsr } from './csr.js';
import { ProvisioningClient } from './enrollment-client.js';
import { DeviceError, toDeviceError } from './errors.js';
import { generateDeviceKey, loadDeviceKey, type KeyAlgorithm } from './keys.js';

export interface EnrollOptions {
  token: string;
  provisioningUrl: string;
  /** PEM trust anchors given at flash time: the only CAs this TLS connection trusts. */
  bootstrapCa: string;
  /** Default P-256. */
  keyAlgorithm?: KeyAlgorithm;
  /** Keep retrying transient failures this long, ms. Default 5 minutes. */
  retryForMs?: number;
  random?: () => number;
  /** Called before each retry with the error that caused it. */
  onRetry?: (err: DeviceError, delayMs: number) => void;
  /**
   * The stored identity is known to be revoked or expired (identityStatus): enroll afresh
   * and replace it once the new one is issued. Default false: a stored identity is an error.
   */
  replaceDeadIdentity?: boolean;
}

/**
 * Enrollment as named steps: key (reused from an unanswered attempt, so the service's
 * idempotent replay answers the same certificate) → persist pending key → CSR → POST
 * /v1/enroll → store the identity. A power cut anywhere leaves either the pending key
 * (the next run asks again with it) or the whole identity.
 */
export async function enrollWithStore(store: CredentialStore, opts: EnrollOptions): Promise<DeviceIdentity> {
  if (!opts.bootstrapCa.includes('-----BEGIN CERTIFICATE-----')) throw new DeviceError('invalid_request', 'the bootstrap CA bundle holds no PEM certificate');
  const client = new ProvisioningClient(opts.provisioningUrl);
  const state = await store.load();
  const replacing = state.current !== undefined;
  if (replacing && !opts.replaceDeadIdentity) throw new DeviceError('invalid_request', `this state already holds the identity of ${state.current!.deviceId}`);
  if (replacing && store.replaceIdentity === undefined) throw new DeviceError('invalid_request', 'this credential store cannot replace an identity');
  let pending = state.pendingEnrollment;
  if (pending === undefined || pending.provisioningUrl !== client.url) {
    const fresh = await generateDeviceKey(opts.keyAlgorithm);
    pending = { privateKeyPem: fresh.privateKeyPem, provisioningUrl: client.url, createdAt: new Date().toISOString() };
    await store.savePendingEnrollment(pending);
  }
  const key = loadDeviceKey(pending.privateKeyPem);
  const csr = createCsr(key, 'tlsfleet-device');
  const backoff = new Backoff({ initialDelayMs: 500, maxDelayMs: 30_000, random: opts.random });
  const deadline = Date.now() + (opts.retryForMs ?? 5 * 60_000);
  for (;;) {
    try {
      const identity = await client.enroll(opts.token, csr, key, opts.bootstrapCa);
      await (replacing ? store.replaceIdentity!(identity) : store.saveEnrolled(identity));
      return identity;
    } catch (caught) {
      const err = toDeviceError(caught);
      const delay = Math.max(err.retryAfterMs ?? 0, backoff.next());
      // A configuration error (wrong CA, host, port) is said at once, not retried for minutes.
      if (!err.retryable || err.configuration || Date.now() + delay > deadline) throw err;
      opts.onRetry?.(err, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
