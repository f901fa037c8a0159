import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { filterProblem, publishTopicProblem, topicMatchesFilter } from '@tlsfleet/common';
import { Backoff } from './backoff.js';
import { Connection } from './connection.js';
import type { CredentialStore, DeviceIdentity } from './credential-store.js';
import { createCsr } from './csr.js';
import { ProvisioningClient } from './enrollment-client.js';
import { enrollWithStore } from './enroll.js';
import { DeviceError, toDeviceError } from './errors.js';
import { FileCredentialStore } from './file-credential-store.js';
import { RenewalKey } from './renewal-key.js';
import { renewAfterExpiry } from './expired-renewal.js';
import { OutboundQueue } from './outbound-queue.js';
import { isExpired, renewAtMs } from './renewal.js';
import type { DeviceEvents, DeviceOptions, DeviceState, IdentitySummary, MessageHandler, PublishOptions } from './device-options.js';

export type { DeviceEvents, DeviceOptions, DeviceState, IdentitySummary, MessageHandler, PublishOptions } from './device-options.js';


/** Least wait before renewing again after a configuration error, ms. */
const CONFIGURATION_RETRY_MS = 30_000;

/** setTimeout's ceiling (~24.8 days); longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Creates a device; listen to its events, then `await device.start()`. */
export function createDevice(opts: DeviceOptions): Device {
  return new Device(opts);
}

/**
 * A device: one identity, kept fresh by renewal, and one persistent MQTT session that
 * follows it. Publishes go under `devices/{id}/`.
 */
export class Device extends EventEmitter<DeviceEvents> {
  private readonly opts: DeviceOptions;
  private readonly store: CredentialStore;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly renewBackoff: Backoff;
  private readonly handlers = new Map<string, MessageHandler[]>();
  private current: DeviceIdentity | undefined;
  private candidate: DeviceIdentity | undefined;
  private queue: OutboundQueue | undefined;
  private connection: Connection | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private renewing: Promise<boolean> | undefined;
  private recovering: Promise<void> | undefined;
  /** While a renewal after expiry waits to be retried: when. */
  private expiredRetryAtMs = 0;
  private pendingExpiredRetry: DeviceError | undefined;
  private readonly renewalKey: RenewalKey;
  private reenrollReason: DeviceError | undefined;
  private _state: DeviceState = 'idle';

  constructor(opts: DeviceOptions) {
    super();
    if (opts.store === undefined && opts.stateDir === undefined) throw new DeviceError('invalid_request', 'createDevice needs stateDir or store');
    const broker = new URL(opts.brokerUrl);
    if (broker.protocol !== 'mqtts:') throw new DeviceError('invalid_request', `broker URL must be mqtts:// (got ${opts.brokerUrl})`);
    this.opts = opts;
    this.store = opts.store ?? new FileCredentialStore(opts.stateDir!);
    this.renewalKey = new RenewalKey(this.store, opts.keyAlgorithm);
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.renewBackoff = new Backoff({ initialDelayMs: 1000, maxDelayMs: 5 * 60_000, random: this.random, ...opts.renewalRetry });
  }

  get state(): DeviceState {
    return this._state;
  }

  get deviceId(): string | undefined {
    return this.current?.deviceId;
  }

  /** The identity in use (the proven one), without its key. */
  get identity(): IdentitySummary | undefined {
    return this.current && summary(this.current);
  }

  get connected(): boolean {
    return this.connection?.connected ?? false;
  }

  /**
   * Loads the stored identity (enrolling with the token when there is none), then keeps
   * it renewed and connected. Resolves once the connection loop runs, not when connected:
   * wait for 'connected' for that.
   */
  async start(): Promise<void> {
    if (this._state !== 'idle') throw new DeviceError('invalid_request', `start() on a device that is ${this._state}`);
    this._state = 'starting';
    try {
      await this.loadIdentity();
    } catch (err) {
      this._state = 'idle';
      throw err;
    }
    const id = this.current!.deviceId;
    this.queue = new OutboundQueue({ ...this.opts.queue, journalPath: this.opts.queue?.persist && this.opts.stateDir ? join(this.opts.stateDir, 'outbox.jsonl') : undefined });
    this.connection = new Connection({
      brokerUrl: this.opts.brokerUrl,
      clientId: id,
      keepaliveSeconds: this.opts.keepaliveSeconds,
      stableAfterMs: this.opts.reconnect?.stableAfterMs,
      configurationMaxDelayMs: this.opts.reconnect?.configurationMaxDelayMs,
      configurationAfterMs: this.opts.reconnect?.configurationAfterMs,
      random: this.random,
      backoff: new Backoff({ random: this.random, initialDelayMs: this.opts.reconnect?.initialDelayMs, maxDelayMs: this.opts.reconnect?.maxDelayMs }),
      queue: this.queue,
      hooks: {
        credentials: () => (this._state === 'running' ? (this.candidate ?? this.current) : undefined),
        connected: (identity, sessionPresent, attemptMs) => this.onConnected(identity, sessionPresent, attemptMs),
        disconnected: (reason) => this.emit('disconnected', { reason }),
        connectFailed: (err, identity) => this.onConnectFailed(err, identity),
        message: (topic, payload, retained) => this.dispatch(topic, payload, retained),
        report: (err) => this.report(err),
        retrying: (error, delayMs, slow) => this.emit('reconnecting', { error, delayMs, slow }),
      },
    });
    this._state = 'running';
    this.scheduleRenewal();
    if (this.pendingExpiredRetry) this.retryAfterExpiry(this.pendingExpiredRetry, `the certificate expired at ${this.newest().notAfter}`);
    this.pendingExpiredRetry = undefined;
    this.connection.start();
  }

  /** Publishes `payload` to `devices/{id}/{subtopic}`; QoS 1 resolves on PUBACK and is queued while offline. */
  async publish(subtopic: string, payload: string | Uint8Array, opts: PublishOptions = {}): Promise<void> {
    const { connection, queue } = this.running();
    const topic = `devices/${this.current!.deviceId}/${subtopic}`;
    const problem = publishTopicProblem(subtopic) ?? publishTopicProblem(topic) ?? (subtopic.split('/').includes('') ? 'an empty level' : undefined);
    if (problem !== undefined) throw new DeviceError('invalid_topic', `cannot publish to "${subtopic}": ${problem}`);
    const bytes = Buffer.from(payload);
    if ((opts.qos ?? 1) === 0) return connection.sendAtMostOnce(topic, bytes, opts.retain ?? false);
    const { message, acked } = queue.add(topic, bytes, opts.retain ?? false);
    connection.send(message);
    return acked;
  }

  /** Subscribes to `devices/{id}/{subfilter}` at QoS 1; the handler gets the subtopic. */
  async subscribe(subfilter: string, handler: MessageHandler): Promise<void> {
    const { connection } = this.running();
    const filter = `devices/${this.current!.deviceId}/${subfilter}`;
    const problem = filterProblem(subfilter) ?? filterProblem(filter);
    if (problem !== undefined) throw new DeviceError('invalid_topic', `cannot subscribe to "${subfilter}": ${problem}`);
    this.handlers.set(filter, [...(this.handlers.get(filter) ?? []), handler]);
    await connection.subscribe(filter);
  }

  /** Disconnects cleanly (the broker keeps the session), stops timers; queued messages stay in the journal if persisted. */
  async close(): Promise<void> {
    if (this._state === 'closed') return;
    this._state = 'closed';
    this.clearTimers();
    await this.connection?.stop();
    this.queue?.close(new DeviceError('closed'));
  }

  private running(): { connection: Connection; queue: OutboundQueue } {
    if (this._state === 'reenrollment-required') throw this.reenrollReason!;
    if (this._state !== 'running' || !this.connection || !this.queue) throw new DeviceError('closed', `the device is ${this._state}`);
    return { connection: this.connection, queue: this.queue };
  }

  private async loadIdentity(): Promise<void> {
    let state = await this.store.load();
    if (state.current === undefined) {
      const { token, provisioningUrl, bootstrapCa } = this.opts;
      if (token === undefined || provisioningUrl === undefined || bootstrapCa === undefined) {
        throw new DeviceError('not_enrolled', 'no identity is stored; give token, provisioningUrl and bootstrapCa to enroll');
      }
      const identity = await enrollWithStore(this.store, { token, provisioningUrl, bootstrapCa, keyAlgorithm: this.opts.keyAlgorithm, random: this.random });
      this.emit('enrolled', summary(identity));
      state = { current: identity };
    }
    this.current = state.current;
    this.candidate = state.candidate;
    const now = this.now();
    // A renewal that could not be proven before the old certificate ran out: the new one is all there is.
    if (this.candidate && isExpired(this.current!, now) && !isExpired(this.candidate, now)) {
      await this.store.promoteCandidate();
      this.current = this.candidate;
      this.candidate = undefined;
    }
    if (isExpired(this.newest(), now)) {
      const refused = await this.renewExpired();
      if (refused === undefined) return;
      // No answer, or "later" (503 with Retry-After): start anyway and ask again, paced.
      if (refused.retryable) return void (this.pendingExpiredRetry = refused);
      const err = new DeviceError('expired', `the certificate of ${this.current!.deviceId} expired at ${this.newest().notAfter} (renewal after expiry: ${refused.message}); enroll again with a new token`);
      this.emit('reenrollment-required', err);
      throw err;
    }
  }

  private newest(): DeviceIdentity {
    return this.candidate ?? this.current!;
  }

  private async onConnected(identity: DeviceIdentity, sessionPresent: boolean, attemptMs: number): Promise<void> {
    if (identity === this.candidate) {
      // Proven by the broker: only now does the renewed identity replace the working one.
      await this.store.promoteCandidate();
      this.current = identity;
      this.candidate = undefined;
    }
    this.emit('connected', { serial: identity.serial, sessionPresent, attemptMs });
  }

  private async onConnectFailed(err: DeviceError, identity: DeviceIdentity): Promise<'retry' | 'retry-now' | 'stop'> {
    this.report(err);
    if (this._state !== 'running') return 'stop';
    if (err.code !== 'unauthorized') return 'retry';
    if (identity === this.candidate) {
      // The broker does not take the renewed certificate (yet): keep the working one.
      this.candidate = undefined;
      await this.store.discardCandidate();
      return 'retry-now';
    }
    if (isExpired(identity, this.now())) {
      await this.afterExpiry(`the certificate expired at ${identity.notAfter}`);
      if (this._state !== 'running') return 'stop';
      return isExpired(this.newest(), this.now()) ? 'retry' : 'retry-now';
    }
    // Refused with a certificate we think is good: ask the service (a renewal says
    // `revoked` if it is). Paced by the reconnect backoff, so no faster than connecting.
    await this.renew();
    return this._state === 'running' ? 'retry' : 'stop';
  }

  private scheduleRenewal(): void {
    clearTimeout(this.renewTimer);
    clearTimeout(this.expiryTimer);
    if (this._state !== 'running') return;
    const newest = this.newest();
    if (!isExpired(newest, this.now())) this.armTimer('renew', renewAtMs(newest, this.random), () => void this.renew());
    this.armTimer('expiry', Date.parse(newest.notAfter), () => {
      if (isExpired(this.newest(), this.now())) void this.afterExpiry(`the certificate expired at ${this.newest().notAfter} before it could be renewed`);
    });
  }

  private armTimer(which: 'renew' | 'expiry', atMs: number, fire: () => void): void {
    const delay = Math.max(0, atMs - this.now());
    const timer = setTimeout(() => (delay > MAX_TIMER_MS ? this.armTimer(which, atMs, fire) : fire()), Math.min(delay, MAX_TIMER_MS));
    timer.unref?.();
    if (which === 'renew') this.renewTimer = timer;
    else this.expiryTimer = timer;
  }

  /** One renewal attempt; schedules the retry or the next renewal. True when a new identity was issued. */
  private renew(): Promise<boolean> {
    this.renewing ??= this.renewOnce().finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  private async renewOnce(): Promise<boolean> {
    if (this._state !== 'running') return false;
    const authenticating = this.newest();
    try {
      const key = await this.renewalKey.for(authenticating.serial);
      const client = new ProvisioningClient(authenticating.provisioningUrl);
      const renewed = await client.renew(createCsr(key, authenticating.deviceId), key, authenticating);
      if (this._state !== 'running') return false;
      await this.store.saveCandidate(renewed);
      this.candidate = renewed;
      this.renewalKey.forget();
      this.renewBackoff.reset();
      this.emit('renewed', summary(renewed));
      this.scheduleRenewal();
      this.connection?.swap();
      return true;
    } catch (caught) {
      const err = toDeviceError(caught);
      this.report(err);
      if (err.code === 'revoked') {
        this.requireReenrollment(err);
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
      const delay = Math.max(err.retryAfterMs ?? 0, this.renewBackoff.next(), err.configuration && !err.retryable ? CONFIGURATION_RETRY_MS : 0);
      clearTimeout(this.renewTimer);
      if (this._state === 'running') this.armTimer('renew', Math.min(this.now() + delay, Date.parse(authenticating.notAfter)), () => void this.renew());
      return false;
    }
  }

  /**
   * While running, the newest certificate expired: one renewal after expiry, then the new
   * identity is tried as a renewal's is; refused or unreachable: reenrollment-required.
   */
  private afterExpiry(why: string): Promise<void> {
    if (this.now() < this.expiredRetryAtMs) return Promise.resolve(); // a paced retry is armed
    this.recovering ??= (async () => {
      if (this._state !== 'running' || !isExpired(this.newest(), this.now())) return;
      const refused = await this.renewExpired();
      if (this._state !== 'running') return;
      if (refused?.retryable) return this.retryAfterExpiry(refused, why);
      if (refused !== undefined) return this.requireReenrollment(new DeviceError('expired', `${why} (renewal after expiry: ${refused.message})`));
      this.renewBackoff.reset();
      this.scheduleRenewal();
      this.connection?.swap();
    })().finally(() => (this.recovering = undefined));
    return this.recovering;
  }

  /** The service could not answer (down, overloaded): ask again after the renewal backoff or its Retry-After. */
  private retryAfterExpiry(err: DeviceError, why: string): void {
    this.expiredRetryAtMs = this.now() + Math.max(err.retryAfterMs ?? 0, this.renewBackoff.next());
    clearTimeout(this.expiryTimer);
    this.armTimer('expiry', this.expiredRetryAtMs, () => {
      this.expiredRetryAtMs = 0;
      void this.afterExpiry(why);
    });
  }

  /** POST /v1/renew-expired for the newest identity; the answer becomes the candidate. The refusal, if any. */
  private async renewExpired(): Promise<DeviceError | undefined> {
    try {
      const renewed = await renewAfterExpiry(this.newest(), this.renewalKey);
      await this.store.saveCandidate(renewed);
      this.candidate = renewed;
      this.emit('renewed', summary(renewed), { afterExpiry: true });
      return undefined;
    } catch (caught) {
      const err = toDeviceError(caught);
      this.report(err);
      return err;
    }
  }

  private requireReenrollment(err: DeviceError): void {
    if (this._state !== 'running') return;
    this._state = 'reenrollment-required';
    this.reenrollReason = err;
    this.clearTimers();
    this.emit('reenrollment-required', err);
    void this.connection?.stop();
  }

  private clearTimers(): void {
    clearTimeout(this.renewTimer);
    clearTimeout(this.expiryTimer);
  }

  private dispatch(topic: string, payload: Buffer, retained: boolean): void {
    const prefix = `devices/${this.current!.deviceId}/`;
    for (const [filter, handlers] of this.handlers) {
      if (!topicMatchesFilter(filter, topic)) continue;
      for (const handler of handlers) {
        try {
          handler(topic.startsWith(prefix) ? topic.slice(prefix.length) : topic, payload, { topic, retained });
        } catch (err) {
          this.report(toDeviceError(err, 'internal_error'));
        }
      }
    }
  }

  private report(err: DeviceError): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

function summary(identity: DeviceIdentity): IdentitySummary {
  const { deviceId, serial, notBefore, notAfter, renewAfter } = identity;
  return { deviceId, serial, notBefore, notAfter, renewAfter };
}
