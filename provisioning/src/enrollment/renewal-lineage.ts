import { TlsfleetError } from '@tlsfleet/common';
import type { CertificateRecord, DeviceRecord, Enrollment, Store } from '../storage/store.js';
import type { Grant } from './grant.js';
import { REPLAY_WINDOW_MS } from './one-time-token.js';

/**
 * A renewal grant bound to its place in the device's lineage. Only the device's current
 * certificate (the last one issued to it, by enrollment or renewal) may renew; a
 * superseded one may only have its own recent successor again.
 */
export interface RenewalGrant extends Grant {
  /** Serial of the certificate the client authenticated with. */
  readonly presentedSerial: string;
  /**
   * Set when the presented certificate has already been renewed: its unrevoked successors
   * issued within the replay window (10 minutes). Only a CSR for one of their keys is
   * answered, with that certificate again (a device that lost the answer to a power cut).
   */
  readonly supersededBy?: readonly CertificateRecord[];
}

/** The answer to a renewal: a new certificate, or an earlier one replayed. */
export interface LineageAnswer {
  readonly certificate: Omit<CertificateRecord, 'revokedAt' | 'revokedBy'>;
  readonly replayed: boolean;
}

/**
 * The cheap half, before any signature is checked: the presented certificate is current,
 * or superseded with a successor young enough to be replayed; otherwise `superseded`.
 */
export async function checkLineage(store: Store, device: DeviceRecord, presentedSerial: string, nowMs: number): Promise<readonly CertificateRecord[] | undefined> {
  if (device.currentSerial === presentedSerial) return undefined;
  const recent = (await store.findRenewalsOf(presentedSerial)).filter((c) => c.revokedAt === undefined && nowMs - c.issuedAt <= REPLAY_WINDOW_MS);
  if (recent.length === 0) throw superseded();
  return recent;
}

/**
 * The half after the CSR is accepted: replays the successor issued for the same key, or
 * issues and records atomically against the lineage. Of two concurrent renewals of one
 * certificate the store lets one through; the other gets the winner's certificate when it
 * asked for the same key, `superseded` otherwise.
 */
export async function renewInLineage(
  store: Store,
  grant: RenewalGrant,
  spkiHash: string,
  issue: () => Enrollment['certificate'],
): Promise<LineageAnswer> {
  if (grant.supersededBy) {
    const earlier = grant.supersededBy.find((c) => c.spkiHash === spkiHash);
    if (earlier) return { certificate: earlier, replayed: true };
    throw superseded();
  }
  const certificate = issue();
  const outcome = await store.recordRenewal(certificate, grant.presentedSerial);
  if (outcome === 'recorded') return { certificate, replayed: false };
  if (outcome === 'revoked') throw new TlsfleetError('revoked');
  const winner = (await store.findRenewalsOf(grant.presentedSerial)).find((c) => c.spkiHash === spkiHash && c.revokedAt === undefined);
  if (winner) return { certificate: winner, replayed: true };
  throw superseded();
}

function superseded(): TlsfleetError {
  return new TlsfleetError('superseded');
}
