import { Backoff, type BackoffOptions } from './backoff.js';
import type { CredentialStore, DeviceIdentity } from './credential-store.js';
import { DeviceError, toDeviceError } from './errors.js';
import { renewAfterExpiry } from './expired-renewal.js';
import type { KeyAlgorithm, DeviceKey } from './keys.js';
import { RenewalKey } from './renewal-key.js';
import { isExpired, renewAtMs } from './renewal.js';

/** Least wait before renewing again after a configuration error, ms. */
const CONFIGURATION_RETRY_MS = 30_000;

/** setTimeout's ceiling (~24.8 days); longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What the renewal loop needs from its device. */
export interface RenewalHost {
  /** The device runs (not closed, not waiting for re-enrollment). */
  running(): boolean;
  /** The newest identity: the candidate if there is one, else the proven one. */
  newest(): DeviceIdentity;
  /** Stores `renewed` as the candidate and tells the application. */
  adopt(renewed: DeviceIdentity, afterExpiry: boolean): Promise<void>;
  /** Moves the session to the newest identity. */
  swap(): void;
  report(err: DeviceError): void;
  requireReenrollment(err: DeviceError): void;
  /** One renewal of `authenticating` with the new key `key` (in-band or HTTPS); throws the typed refusal. */
  exchange(authenticating: DeviceIdentity, key: DeviceKey): Promise<DeviceIdentity>;
}

export interface RenewalLoopOptions {
  store: CredentialStore;
  keyAlgorithm?: KeyAlgorithm;
  retry?: BackoffOptions;
  now: () => number;
  random: () => number;
}

/**
 * When and how a running device renews: the renewal timer (at `renewAfter` with jitter),
 * retries with backoff (never past notAfter, honouring Retry-After), and recovery once the
 * certificate has expired (POST /v1/renew-expired, paced retries).
 */
export class RenewalLoop {
  readonly renewalKey: RenewalKey;
  private readonly host: RenewalHost;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly backoff: Backoff;
  private renewTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private renewing: Promise<boolean> | undefined;
  private recovering: Promise<void> | undefined;
  /** While a renewal after expiry waits to be retried: when. */
  private expiredRetryAtMs = 0;

  constructor(host: RenewalHost, opts: RenewalLoopOptions) {
    this.host = host;
    this.now = opts.now;
    this.random = opts.random;
    this.renewalKey = new RenewalKey(opts.store, opts.keyAlgorithm);
    this.backoff = new Backoff({ initialDelayMs: 1000, maxDelayMs: 5 * 60_000, random: this.random, ...opts.retry });
  }

  /** Arms the renewal timer for the newest identity, and the expiry timer. */
  schedule(): void {
    clearTimeout(this.renewTimer);
    clearTimeout(this.expiryTimer);
    if (!this.host.running()) return;
    const newest = this.host.newest();
    if (!isExpired(newest, this.now())) this.armTimer('renew', renewAtMs(newest, this.random), () => void this.renew());
    this.armTimer('expiry', Date.parse(newest.notAfter), () => {
      if (isExpired(this.host.newest(), this.now())) void this.afterExpiry(`the certificate expired at ${this.host.newest().notAfter} before it could be renewed`);
    });
  }

  stop(): void {
    clearTimeout(this.renewTimer);
    clearTimeout(this.expiryTimer);
  }

  /** One renewal attempt; schedules the retry or the next renewal. True when a new identity was issued. */
  renew(): Promise<boolean> {
    this.renewing ??= this.renewOnce().finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  private armTimer(which: 'renew' | 'expiry', atMs: number, fire: () => void): void {
    const delay = Math.max(0, atMs - this.now());
    const timer = setTimeout(() => (delay > MAX_TIMER_MS ? this.armTimer(which, atMs, fire) : fire()), Math.min(delay, MAX_TIMER_MS));
    timer.unref?.();
    if (which === 'renew') this.renewTimer = timer;
    else this.expiryTimer = timer;
  }

  private async renewOnce(): Promise<boolean> {
    const host = this.host;
    if (!host.running()) return false;
    const authenticating = host.newest();
    try {
      const key = await this.renewalKey.for(authenticating.serial);
      const renewed = await host.exchange(authenticating, key);
      if (!host.running()) return false;
      await host.adopt(renewed, false);
      this.renewalKey.forget();
      this.backoff.reset();
      this.schedule();
      host.swap();
      return true;
    } catch (caught) {
      const err = toDeviceError(caught);
      host.report(err);
      if (err.code === 'revoked') {
        host.requireReenrollment(err);
        return false;
      }
      if (isExpired(authenticating, this.now())) {
        // Too late for /v1/renew, whatever the answer: renewal after expiry takes over.
        void this.afterExpiry(err.message);
        return false;
      }
      if (err.code === 'superseded') {
        // Renewed elsewhere (a lost answer older than 10 minutes, or a copy of this key):
        // never again with this certificate. It still connects until it expires, when the
        // expiry timer asks for re-enrollment.
        this.renewalKey.forget();
        clearTimeout(this.renewTimer);
        return false;
      }
      if (err.code === 'key_rejected') this.renewalKey.forget();
      // Transient or not, retry while the certificate is valid; honour the service's Retry-After.
      // A configuration error (the service's certificate does not verify, no such host) is never retried quickly.
      const delay = Math.max(err.retryAfterMs ?? 0, this.backoff.next(), err.configuration && !err.retryable ? CONFIGURATION_RETRY_MS : 0);
      clearTimeout(this.renewTimer);
      if (host.running()) this.armTimer('renew', Math.min(this.now() + delay, Date.parse(authenticating.notAfter)), () => void this.renew());
      return false;
    }
  }

  /**
   * While running, the newest certificate expired: one renewal after expiry, then the new
   * identity is tried as a renewal's is; refused or unreachable: reenrollment-required.
   */
  afterExpiry(why: string): Promise<void> {
    if (this.now() < this.expiredRetryAtMs) return Promise.resolve(); // a paced retry is armed
    this.recovering ??= (async () => {
      const host = this.host;
      if (!host.running() || !isExpired(host.newest(), this.now())) return;
      const refused = await this.renewExpired();
      if (!host.running()) return;
      if (refused?.retryable) return this.retryAfterExpiry(refused, why);
      if (refused !== undefined) return host.requireReenrollment(new DeviceError('expired', `${why} (renewal after expiry: ${refused.message})`));
      this.backoff.reset();
      this.schedule();
      host.swap();
    })().finally(() => (this.recovering = undefined));
    return this.recovering;
  }

  /** The service could not answer (down, overloaded): ask again after the renewal backoff or its Retry-After. */
  retryAfterExpiry(err: DeviceError, why: string): void {
    this.expiredRetryAtMs = this.now() + Math.max(err.retryAfterMs ?? 0, this.backoff.next());
    clearTimeout(this.expiryTimer);
    this.armTimer('expiry', this.expiredRetryAtMs, () => {
      this.expiredRetryAtMs = 0;
      void this.afterExpiry(why);
    });
  }

  /** POST /v1/renew-expired for the newest identity; the answer becomes the candidate. The refusal, if any. */
  async renewExpired(): Promise<DeviceError | undefined> {
    try {
      const renewed = await renewAfterExpiry(this.host.newest(), this.renewalKey);
      await this.host.adopt(renewed, true);
      return undefined;
    } catch (caught) {
      const err = toDeviceError(caught);
      this.host.report(err);
      return err;
    }
  }
}
