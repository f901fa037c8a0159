import { X509Certificate } from 'node:crypto';
import { identifyPeer, isValidName, normalizeSerialHex, TlsfleetError, type PeerCertificate } from '@tlsfleet/common';
import type { Store } from '../storage/store.js';

/** A renewal a broker relays from a device's MQTT session: who, which certificate it connected with, the CSR. */
export interface RelayedRenewalRequest {
  readonly device: string;
  /** Serial (hex) of the certificate the device's session was authenticated with. */
  readonly serial: string;
  readonly csrDer: Buffer;
}

/** Hex digits a serial may have: 20 octets (RFC 5280 §4.1.2.2), with room for a sign octet. */
const MAX_SERIAL_HEX = 42;

/** Reads `{device, serial, csr}` without any lookup or signature check; anything else is 400. */
export function readRelayedRenewal(body: unknown, csrFromPem: (pem: unknown) => Buffer): RelayedRenewalRequest {
  const b = body as { device?: unknown; serial?: unknown; csr?: unknown } | undefined;
  if (!isValidName(b?.device)) throw new TlsfleetError('invalid_request', 'The body needs a "device": the identity name of the session the request arrived on.');
  if (typeof b.serial !== 'string' || b.serial.length === 0 || b.serial.length > MAX_SERIAL_HEX || !/^[0-9A-Fa-f:]+$/.test(b.serial)) {
    throw new TlsfleetError('invalid_request', 'The body needs a "serial": the hex serial of the certificate that session was authenticated with.');
  }
  return { device: b.device, serial: normalizeSerialHex(b.serial), csrDer: csrFromPem(b.csr) };
}

/**
 * The relay's caller must be one of the service identities named by `--renewal-relay`; a
 * device, an admin, or another service is `forbidden`; a revoked relay certificate
 * `revoked` (checked before the body is read).
 */
export async function requireRelay(caller: PeerCertificate, relays: ReadonlySet<string>, store: Store): Promise<string> {
  if (caller.identity.kind !== 'service' || !relays.has(caller.identity.name)) {
    throw new TlsfleetError('forbidden', 'This client is not a renewal relay of this service (provisioning --renewal-relay).');
  }
  // A relay can renew any live device: its own certificate must be ours and unrevoked, not only chain to the CA.
  const record = await store.findCertificate(caller.serial);
  if (record === undefined || record.subject !== caller.identity.name) throw new TlsfleetError('forbidden', 'This relay certificate was not issued by this service.');
  if (record.revokedAt !== undefined) throw new TlsfleetError('revoked', 'This relay certificate has been revoked.');
  return caller.identity.name;
}

/**
 * The certificate the relayed session was authenticated with, as if the device had presented
 * it itself: one this service issued, to that identity. From there /v1/renew's rules apply
 * (expiry, revocation, lineage, fresh key).
 */
export async function relayedPeer(store: Store, req: RelayedRenewalRequest, trustDomain: string): Promise<PeerCertificate> {
  const record = await store.findCertificate(req.serial);
  if (record === undefined || record.subject !== req.device) {
    throw new TlsfleetError('forbidden', `No certificate with serial ${req.serial} was issued to ${req.device}.`);
  }
  const peer = identifyPeer(new X509Certificate(record.pem), trustDomain);
  if (typeof peer === 'string') throw new TlsfleetError('forbidden', `The certificate is not a tlsfleet identity (${peer}).`);
  return peer;
}
