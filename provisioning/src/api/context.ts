import type { Authority } from '../authority/authority.js';
import type { Logger } from '../logger.js';
import type { ProvisioningMetrics } from '../metrics.js';
import type { Store } from '../storage/store.js';
import type { IssuanceGate } from './issuance-gate.js';
import type { RefusalLog } from '../server/refusal-log.js';

/** What the route handlers need, built once at start-up. */
export interface ApiContext {
  readonly authority: Authority;
  readonly store: Store;
  readonly metrics: ProvisioningMetrics;
  readonly gate: IssuanceGate;
  readonly logger: Logger;
  readonly trustDomain: string;
  /** SHA-256 of the admin token; compared in constant time. */
  readonly adminTokenHash: Buffer;
  readonly caBundlePem: string;
  /** Service identities (`--renewal-relay`) allowed to renew on behalf of a device's MQTT session. */
  readonly renewalRelays: ReadonlySet<string>;
  /** PEM certificates EST's /cacerts hands out: root and intermediate. */
  readonly caCertificatesPem: string;
  /** Largest request body accepted, bytes; default 16 KiB. */
  readonly maxBodyBytes: number;
  /** Time an issuance body may take to arrive, from the end of its headers, ms; default 5 s. */
  readonly bodyTimeoutMs: number;
  /** Rate-limited warn lines for refusals and timeouts. */
  readonly refusals: RefusalLog;
  /** True once SIGTERM began draining: /readyz answers 503. */
  readonly draining: () => boolean;
  /** Rewrites the data dir's crl.der; called after each revocation so the broker's file source sees it at once. */
  readonly crlPublisher?: { publish(): Promise<void> };
}
