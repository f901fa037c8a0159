import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { identifyPeer, TlsfleetError, type PeerCertificate } from '@tlsfleet/common';
import type { Store } from '../storage/store.js';
import { checkLineage, type RenewalGrant } from './renewal-lineage.js';

/**
 * The verified client certificate on a TLS socket, or a typed error: none, unverifiable or
 * expired is `unauthorized`; a certificate outside our profile is `forbidden`. The expiry is
 * checked here on every request because `socket.authorized` is the verdict of the handshake
 * that created the TLS session: a resumed session (RFC 5246 §7.4, RFC 8446 §2.2) carries it
 * past the certificate's notAfter.
 */
export function peerCertificate(socket: TLSSocket, trustDomain: string, nowMs: number = Date.now()): PeerCertificate {
  const raw = socket.getPeerCertificate?.()?.raw;
  if (!raw) throw new TlsfleetError('unauthorized', 'A client certificate is required.');
  if (!socket.authorized) {
    throw new TlsfleetError('unauthorized', `The client certificate does not verify: ${String(socket.authorizationError)}.`);
  }
  const peer = identifyPeer(new X509Certificate(raw), trustDomain);
  if (typeof peer === 'string') throw new TlsfleetError('forbidden', `The client certificate is not a tlsfleet identity (${peer}).`);
  refuseExpired(peer, nowMs);
  return peer;
}

/**
 * Renewal grant from the authenticated certificate: same identity and profile; refused
 * once the certificate has expired (checked here on every request: a resumed TLS session
 * skips the handshake's verification, RFC 5246 §7.4), once it or its device is revoked, for
 * identities enrollment never issued, and when it is no longer the device's current
 * certificate (renewal lineage).
 */
export async function authorizeRenewal(store: Store, peer: PeerCertificate, nowMs: number): Promise<RenewalGrant> {
  if (peer.identity.kind === 'admin') throw new TlsfleetError('forbidden', 'Admin certificates are not renewed through enrollment.');
  refuseExpired(peer, nowMs);
  return grantInLineage(store, peer, nowMs, `renewal:${peer.serial}`);
}

/**
 * The store's checks of a renewal, lookups only: a certificate this service issued to that
 * identity, not revoked (nor its device), and current in the device's lineage.
 */
export async function grantInLineage(store: Store, peer: PeerCertificate, nowMs: number, actor: string): Promise<RenewalGrant> {
  const record = await store.findCertificate(peer.serial);
  if (!record || record.subject !== peer.identity.name) throw new TlsfleetError('forbidden', 'This certificate was not issued by this service.');
  if (record.revokedAt !== undefined) throw new TlsfleetError('revoked');
  const device = await store.findDevice(peer.identity.name);
  if (!device) throw new TlsfleetError('forbidden', 'Unknown device.');
  const supersededBy = await checkLineage(store, device, peer.serial, nowMs);
  return {
    identity: peer.identity,
    certTtlSeconds: device.certTtlSeconds,
    actor,
    presentedSerial: peer.serial,
    ...(supersededBy ? { supersededBy } : {}),
  };
}

function refuseExpired(peer: PeerCertificate, nowMs: number): void {
  if (nowMs >= peer.notAfterMs) {
    throw new TlsfleetError('unauthorized', `The client certificate expired at ${new Date(peer.notAfterMs).toISOString()}; an expired certificate authenticates nothing.`);
  }
}
