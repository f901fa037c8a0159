import { EventEmitter } from 'node:events';
import type { X509Certificate } from 'node:crypto';
import { normalizeSerialHex } from '@tlsfleet/common';
import { CrlError, parseCrl, type VerifiedCrl } from './crl.js';

/** `stale`: past nextUpdate, an alert only: the last CRL stays in force. `missing`: none loaded yet. */
export type CrlState = 'fresh' | 'stale' | 'missing';

/** What `load` did: `older` and `unchanged` are no-ops; `rejected` also emits 'rejected'. */
export type CrlLoadResult = 'accepted' | 'unchanged' | 'older' | 'rejected';

export interface RevocationListEvents {
  /** A newer CRL is in force; `newlyRevoked` holds the serials the previous one did not list. */
  update: [newlyRevoked: ReadonlySet<string>, crl: VerifiedCrl];
  /** The CRL in force passed its nextUpdate without a newer one arriving. */
  stale: [crl: VerifiedCrl];
  /** Input that is not a valid CRL of a trusted issuer; the last good CRL stays in force. */
  rejected: [error: CrlError];
}

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface RevocationListOptions {
  /** Certificates whose keys may sign CRLs: the trust bundle (root and intermediate). */
  issuers: readonly X509Certificate[];
  /** Clock, ms since the epoch; default Date.now. */
  now?: () => number;
  /** Timers for the staleness alarm; default the global ones, unref'd. */
  timers?: Timers;
}

/** setTimeout's longest delay (2^31 − 1 ms, about 24.8 days); longer waits are re-armed. */
const MAX_DELAY_MS = 2_147_483_647;

const GLOBAL_TIMERS: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * The CRL in force and the serials it revokes. Accepts only verified CRLs, never an older
 * one than it holds (rollback protection), and keeps the last good CRL through invalid input
 * and past nextUpdate: a late CRL is an alert, never a reason to refuse the fleet.
 */
export class RevocationList extends EventEmitter<RevocationListEvents> {
  private issuers: readonly X509Certificate[];
  private readonly now: () => number;
  private readonly timers: Timers;
  private crl: VerifiedCrl | undefined;
  /** The last CRL refused for want of its issuer, tried again when the bundle changes. */
  private unknownIssuerCrl: Buffer | undefined;
  private staleTimer: unknown;

  constructor(opts: RevocationListOptions) {
    super();
    this.issuers = opts.issuers;
    this.now = opts.now ?? Date.now;
    this.timers = opts.timers ?? GLOBAL_TIMERS;
  }

  /** The CRL in force, if any. */
  get current(): VerifiedCrl | undefined {
    return this.crl;
  }

  isRevoked(serial: string): boolean {
    return this.crl?.revoked.has(normalizeSerialHex(serial)) ?? false;
  }

  state(): CrlState {
    if (this.crl === undefined) return 'missing';
    return isPast(this.crl, this.now()) ? 'stale' : 'fresh';
  }

  /**
   * Replaces the trust bundle (on reload). A CRL in force whose signer left the bundle is
   * dropped: certificates of that CA no longer verify anyway, and a new CA numbers its CRLs
   * from the start, which rollback protection would otherwise ignore. A CRL refused earlier
   * because its issuer was not yet trusted is loaded again: during an intermediate rotation
   * the new issuer's CRL file may be seen before the bundle that trusts it, and the file
   * source reads a file once per change.
   */
  setIssuers(issuers: readonly X509Certificate[]): void {
    this.issuers = issuers;
    if (this.crl && !issuers.some((c) => c.fingerprint256 === this.crl?.issuerFingerprint256)) {
      this.crl = undefined;
      this.timers.clearTimeout(this.staleTimer);
    }
    const retry = this.unknownIssuerCrl;
    this.unknownIssuerCrl = undefined;
    if (retry) this.load(retry);
  }

  /** Verifies `der` and puts it in force when its cRLNumber is higher than the current one's. */
  load(der: Buffer): CrlLoadResult {
    let crl: VerifiedCrl;
    try {
      crl = parseCrl(der, this.issuers);
    } catch (err) {
      const error = err instanceof CrlError ? err : new CrlError(String(err));
      if (error.unknownIssuer) this.unknownIssuerCrl = der;
      this.emit('rejected', error);
      return 'rejected';
    }
    this.unknownIssuerCrl = undefined;
    const previous = this.crl;
    // RFC 5280 §5.2.3: cRLNumber increases monotonically; a lower one is a replay or a lagging copy.
    if (previous && crl.number < previous.number) return 'older';
    if (previous && crl.number === previous.number) return 'unchanged';
    this.crl = crl;
    this.armStaleAlarm();
    const newlyRevoked = new Set([...crl.revoked].filter((serial) => !previous?.revoked.has(serial)));
    this.emit('update', newlyRevoked, crl);
    // Already late when it arrived: still the newest, so in force, and an alert.
    if (isPast(crl, this.now()) && this.crl === crl) this.emit('stale', crl);
    return 'accepted';
  }

  /** Stops the staleness alarm. */
  close(): void {
    this.timers.clearTimeout(this.staleTimer);
  }

  private armStaleAlarm(): void {
    this.timers.clearTimeout(this.staleTimer);
    const crl = this.crl;
    if (crl?.nextUpdate === undefined) return;
    const delay = crl.nextUpdate.getTime() - this.now();
    if (delay <= 0) return; // load() reports it at once
    this.staleTimer = this.timers.setTimeout(() => {
      if (this.crl !== crl) return;
      if (isPast(crl, this.now())) this.emit('stale', crl);
      else this.armStaleAlarm();
    }, Math.min(delay, MAX_DELAY_MS));
  }
}

/** RFC 5280 §5.1.2.5: nextUpdate is the date by which the next CRL will be issued. */
function isPast(crl: VerifiedCrl, now: number): boolean {
  return crl.nextUpdate !== undefined && now >= crl.nextUpdate.getTime();
}
