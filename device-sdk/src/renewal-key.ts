import type { CredentialStore } from './credential-store.js';
import { generateDeviceKey, loadDeviceKey, type DeviceKey, type KeyAlgorithm } from './keys.js';

/**
 * The key of the renewal in progress. One fresh key per certificate renewed, kept across
 * retries and, through the store, across a restart: the service answers the same certificate
 * again for the same old certificate and the same new key within 10 minutes, while any other
 * key would find the old certificate superseded (renewal lineage).
 */
export class RenewalKey {
  private readonly store: CredentialStore;
  private readonly algorithm: KeyAlgorithm | undefined;
  private pending: { serial: string; key: DeviceKey } | undefined;
  private loaded = false;

  constructor(store: CredentialStore, algorithm: KeyAlgorithm | undefined) {
    this.store = store;
    this.algorithm = algorithm;
  }

  /** The key for renewing the certificate `serial`: the pending one, or a new one stored before it is used. */
  async for(serial: string): Promise<DeviceKey> {
    if (!this.loaded) {
      this.loaded = true;
      const stored = (await this.store.load()).pendingRenewal;
      if (stored) this.pending = { serial: stored.serial, key: loadDeviceKey(stored.privateKeyPem) };
    }
    if (this.pending?.serial === serial) return this.pending.key;
    const key = await generateDeviceKey(this.algorithm);
    await this.store.savePendingRenewal?.({ privateKeyPem: key.privateKeyPem, serial, createdAt: new Date().toISOString() });
    this.pending = { serial, key };
    return key;
  }

  /** Answered (the store dropped it with the candidate) or refused for good: the next renewal takes a new key. */
  forget(): void {
    this.pending = undefined;
  }
}
