import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { identifyPeer, TlsfleetError, type PeerCertificate } from '@tlsfleet/common';
import type { Store } from '../storage/store.js';
import type { Grant } from './grant.js';

/**
 * The verified client certificate on a TLS socket, or a typed error: none or unverifiable
 * is `unauthorized`; a certificate outside our profile is `forbidden`.
 */
export function peerCertificate(socket: TLSSocket, trustDomain: string): PeerCertificate {
  const raw = socket.getPeerCertificate?.()?.raw;
  if (!raw) throw new TlsfleetError('unauthorized', 'A client certificate is required.');
  if (!socket.authorized) {
    throw new TlsfleetError('unauthorized', `The client certificate does not verify: ${String(socket.authorizationError)}.`);
  }
  const peer = identifyPeer(new X509Certificate(raw), trustDomain);
  if (typeof peer === 'string') throw new TlsfleetError('forbidden', `The client certificate is not a tlsfleet identity (${peer}).`);
  return peer;
}

/**
 * Renewal grant from the authenticated certificate: same identity and profile; refused
 * once the certificate or its device is revoked, and for identities enrollment never issued.
 */
export async function authorizeRenewal(store: Store, peer: PeerCertificate): Promise<Grant> {
  if (peer.identity.kind === 'admin') throw new TlsfleetError('forbidden', 'Admin certificates are not renewed through enrollment.');
  const record = await store.findCertificate(peer.serial);
  if (!record || record.subject !== peer.identity.name) throw new TlsfleetError('forbidden', 'This certificate was not issued by this service.');
  if (record.revokedAt !== undefined) throw new TlsfleetError('revoked');
  const device = await store.findDevice(peer.identity.name);
  if (!device) throw new TlsfleetError('forbidden', 'Unknown device.');
  return { identity: peer.identity, certTtlSeconds: device.certTtlSeconds, actor: `renewal:${peer.serial}` };
}
