import type { Aedes } from 'aedes';
import type { Acl } from '@tlsfleet/common';
import type { Logger } from 'pino';
import type { BrokerMetrics } from './metrics.js';

/** What the hooks consult, swapped in place when the ACL file or the CRL reloads. */
export interface BrokerContext {
  readonly logger: Logger;
  readonly metrics: BrokerMetrics;
  acl: Acl;
  isRevoked(serial: string): boolean;
  /** Subject Key Identifiers of the current trust bundle's CAs, replaced on every TLS reload. */
  trustedIssuers: ReadonlySet<string>;
  now(): number;
  aedes?: Aedes;
}
