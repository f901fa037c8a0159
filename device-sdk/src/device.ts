import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { filterProblem, publishTopicProblem, topicMatchesFilter } from '@tlsfleet/common';
import { Backoff } from './backoff.js';
import { Connection } from './connection.js';
import type { CredentialStore, DeviceIdentity } from './credential-store.js';
import { createCsr } from './csr.js';
import { ProvisioningClient, renewedIdentity } from './enrollment-client.js';
import { enrollWithStore } from './enroll.js';
import { DeviceError, toDeviceError } from './errors.js';
import { FileCredentialStore } from './file-credential-store.js';
import { InBandRenewal, InBandUnavailable } from './inband-renewal.js';
import type { DeviceKey } from './keys.js';
import { OutboundQueue } from './outbound-queue.js';
import { isExpired } from './renewal.js';
import { RenewalLoop } from './renewal-loop.js';
import type { DeviceEvents, DeviceOptions, DeviceState, IdentitySummary, MessageHandler, PublishOptions } from './device-options.js';

export type { DeviceEvents, DeviceOptions, DeviceState, IdentitySummary, MessageHandler, PublishOptions } from './device-options.js';

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
  private readonly handlers = new Map<string, MessageHandler[]>();
  private current: DeviceIdentity | undefined;
  private candidate: DeviceIdentity | undefined;
  private queue: OutboundQueue | undefined;
  private connection: Connection | undefined;
  private inBand: InBandRenewal | undefined;
  private readonly renewals: RenewalLoop;
  private pendingExpiredRetry: DeviceError | undefined;
  private reenrollReason: DeviceError | undefined;
  private _state: DeviceState = 'idle';

  constructor(opts: DeviceOptions) {
    super();
    if (opts.store === undefined && opts.stateDir === undefined) throw new DeviceError('invalid_request', 'createDevice needs stateDir or store');
    const broker = new URL(opts.brokerUrl);
    if (broker.protocol !== 'mqtts:') throw new DeviceError('invalid_request', `broker URL must be mqtts:// (got ${opts.brokerUrl})`);
    this.opts = opts;
    this.store = opts.store ?? new FileCredentialStore(opts.stateDir!);
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.renewals = new RenewalLoop(
      {
        running: () => this._state === 'running',
        newest: () => this.newest(),
        adopt: (renewed, afterExpiry) => this.adoptCandidate(renewed, afterExpiry),
        swap: () => this.connection?.swap(),
        report: (err) => this.report(err),
        requireReenrollment: (err) => this.requireReenrollment(err),
        exchange: (authenticating, key) => this.exchange(authenticating, key),
      },
      { store: this.store, keyAlgorithm: opts.keyAlgorithm, retry: opts.renewalRetry, now: this.now, random: this.random },
    );
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
        connected: (identity, sessionPresent, attemptMs, swap) => this.onConnected(identity, sessionPresent, attemptMs, swap),
        disconnected: (reason) => this.emit('disconnected', { reason }),
        connectFailed: (err, identity) => this.onConnectFailed(err, identity),
        message: (topic, payload, retained) => (this.inBand?.handles(topic) ? this.inBand.onAnswer(payload) : this.dispatch(topic, payload, retained)),
        report: (err) => this.report(err),
        retrying: (error, delayMs, slow) => this.emit('reconnecting', { error, delayMs, slow }),
      },
    });
    if (this.opts.inBandRenewal ?? true) this.inBand = new InBandRenewal(this.connection, id, { timeoutMs: this.opts.inBandTimeoutMs });
    this._state = 'running';
    this.renewals.schedule();
    if (this.pendingExpiredRetry) this.renewals.retryAfterExpiry(this.pendingExpiredRetry, `the certificate expired at ${this.newest().notAfter}`);
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
    this.renewals.stop();
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
      const refused = await this.renewals.renewExpired();
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

  private async onConnected(identity: DeviceIdentity, sessionPresent: boolean, attemptMs: number, swap: boolean): Promise<void> {
    if (identity === this.candidate) {
      // Proven by the broker: only now does the renewed identity replace the working one.
      await this.store.promoteCandidate();
      this.current = identity;
      this.candidate = undefined;
    }
    this.emit('connected', { serial: identity.serial, sessionPresent, attemptMs, ...(swap ? { swap: true as const } : {}) });
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
      await this.renewals.afterExpiry(`the certificate expired at ${identity.notAfter}`);
      if (this._state !== 'running') return 'stop';
      return isExpired(this.newest(), this.now()) ? 'retry' : 'retry-now';
    }
    // Refused with a certificate we think is good: ask the service (a renewal says
    // `revoked` if it is). Paced by the reconnect backoff, so no faster than connecting.
    await this.renewals.renew();
    return this._state === 'running' ? 'retry' : 'stop';
  }

  /** A renewed identity becomes the candidate: stored first, then told; proven at its first CONNACK. */
  private async adoptCandidate(renewed: DeviceIdentity, afterExpiry: boolean): Promise<void> {
    await this.store.saveCandidate(renewed);
    this.candidate = renewed;
    if (afterExpiry) this.emit('renewed', summary(renewed), { afterExpiry: true });
    else this.emit('renewed', summary(renewed));
  }

  /**
   * One renewal of `authenticating`: in-band over the MQTT session when it runs on that
   * certificate, else (or when the broker cannot: no renewer, no answer in time) over HTTPS.
   * The same key and CSR either way, so a lost in-band answer is answered again over HTTPS.
   */
  private async exchange(authenticating: DeviceIdentity, key: DeviceKey): Promise<DeviceIdentity> {
    const csr = createCsr(key, authenticating.deviceId);
    if (this.inBand !== undefined) {
      try {
        return renewedIdentity(await this.inBand.request(csr, authenticating.serial), key, authenticating);
      } catch (err) {
        if (!(err instanceof InBandUnavailable)) throw err;
      }
    }
    return new ProvisioningClient(authenticating.provisioningUrl).renew(csr, key, authenticating);
  }

  private requireReenrollment(err: DeviceError): void {
    if (this._state !== 'running') return;
    this._state = 'reenrollment-required';
    this.reenrollReason = err;
    this.renewals.stop();
    this.emit('reenrollment-required', err);
    void this.connection?.stop();
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
