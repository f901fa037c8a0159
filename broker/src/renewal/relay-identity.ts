import { createCsr, generateDeviceKey, loadDeviceKey, ProvisioningClient, renewAtMs, type DeviceIdentity, type FileCredentialStore } from '@tlsfleet/device-sdk';
import type { Logger } from 'pino';
import { RelayConfigError } from './relay-config.js';

/** setTimeout's longest delay (~24.8 days); a later renewal is re-armed in steps. */
const MAX_DELAY_MS = 2 ** 31 - 1;
const FIRST_RETRY_MS = 30_000;
const MAX_RETRY_MS = 10 * 60_000;

/**
 * The broker's service identity for the renewal relay, from a device SDK state directory:
 * loaded once at start (a candidate left by an interrupted renewal is promoted), then renewed
 * over POST /v1/renew at renewAtMs (its renewAfter, with the SDK's jitter), retried with a
 * doubling delay (30 s to 10 min) until it succeeds, stored through the same store (key first,
 * as a pending renewal, so a retry reuses it) and used for every new connection after that.
 */
export class RelayIdentity {
  #current: DeviceIdentity;
  readonly #store: FileCredentialStore;
  readonly #provisioningUrl: string;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #onRenewed: () => void;
  #timer: NodeJS.Timeout | undefined;
  #retryMs = FIRST_RETRY_MS;
  #closed = false;

  private constructor(store: FileCredentialStore, current: DeviceIdentity, provisioningUrl: string, logger: Logger, now: () => number, onRenewed: () => void) {
    this.#store = store;
    this.#current = current;
    this.#provisioningUrl = provisioningUrl;
    this.#logger = logger;
    this.#now = now;
    this.#onRenewed = onRenewed;
  }

  static async open(store: FileCredentialStore, provisioningUrl: string, logger: Logger, now: () => number, onRenewed: () => void): Promise<RelayIdentity> {
    let state;
    try {
      state = await store.load();
      if (state.candidate !== undefined) {
        await store.promoteCandidate();
        state = await store.load();
      }
    } catch (err) {
      throw new RelayConfigError(`--relay-identity ${store.dir}: ${(err as Error).message}`);
    }
    const current = state.current;
    if (current === undefined) throw new RelayConfigError(`--relay-identity ${store.dir} holds no identity: enroll the broker's service identity there first (tlsfleet device enroll --token <service token> --state ${store.dir} ...)`);
    if (now() >= Date.parse(current.notAfter)) throw new RelayConfigError(`--relay-identity ${store.dir}: the certificate of ${current.deviceId} expired at ${current.notAfter}; enroll it again`);
    const identity = new RelayIdentity(store, current, provisioningUrl, logger, now, onRenewed);
    identity.#schedule(renewAtMs(current) - now());
    return identity;
  }

  get current(): DeviceIdentity {
    return this.#current;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    const delay = Math.max(0, delayMs);
    this.#timer = setTimeout(() => (delay > MAX_DELAY_MS ? this.#schedule(renewAtMs(this.#current) - this.#now()) : void this.#renew()), Math.min(delay, MAX_DELAY_MS));
    this.#timer.unref();
  }

  #adopt(renewed: DeviceIdentity, old: DeviceIdentity, msg: string): void {
    if (this.#closed) return;
    this.#current = renewed;
    this.#retryMs = FIRST_RETRY_MS;
    this.#onRenewed();
    this.#logger.info({ identity: renewed.deviceId, serial: renewed.serial, previousSerial: old.serial, notAfter: renewed.notAfter }, msg);
    this.#schedule(renewAtMs(renewed) - this.#now());
  }

  async #renew(): Promise<void> {
    const old = this.#current;
    try {
      const state = await this.#store.load();
      const onDisk = state.current;
      if (onDisk !== undefined && onDisk.serial !== old.serial && Date.parse(onDisk.notAfter) > Date.parse(old.notAfter)) {
        // Another broker sharing this directory renewed it first: use that one.
        return this.#adopt(onDisk, old, 'renewal relay: own identity renewed by another broker sharing the directory');
      }
      // A key already sent for this certificate is reused: the service answers what it issued for it.
      const pending = state.pendingRenewal?.serial === old.serial ? state.pendingRenewal : undefined;
      const key = pending ? loadDeviceKey(pending.privateKeyPem) : await generateDeviceKey();
      if (!pending) await this.#store.savePendingRenewal({ privateKeyPem: key.privateKeyPem, serial: old.serial, createdAt: new Date(this.#now()).toISOString() });
      const renewed = await new ProvisioningClient(this.#provisioningUrl, { timeoutMs: 30_000 }).renew(createCsr(key, old.deviceId), key, old);
      await this.#store.saveCandidate(renewed);
      await this.#store.promoteCandidate();
      this.#adopt(renewed, old, 'renewal relay: own identity renewed');
    } catch (err) {
      if (this.#closed) return;
      const left = Date.parse(old.notAfter) - this.#now();
      this.#logger[left < 3_600_000 ? 'error' : 'warn']({ identity: old.deviceId, serial: old.serial, notAfter: old.notAfter, err: (err as Error).message, retryInMs: this.#retryMs }, 'renewal relay: own identity not renewed, retrying');
      this.#schedule(this.#retryMs);
      this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
    }
  }
}
