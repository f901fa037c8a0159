import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import {
  derToPem,
  isValidName,
  normalizeSerialHex,
  NOT_BEFORE_BACKDATE_MS,
  renewAfterMs,
  TlsfleetError,
  type Identity,
  type PeerCertificate,
  type TokenKind,
} from '@tlsfleet/common';
import type { CertificateRecord, DeviceRecord, Store } from '../storage/store.js';
import { authorizeToken, hashToken, newToken } from '../enrollment/one-time-token.js';
import { authorizeRenewal } from '../enrollment/peer-certificate.js';
import { requireFreshKey } from '../enrollment/fresh-key.js';
import { renewInLineage } from '../enrollment/renewal-lineage.js';
import { authorizeExpiredRenewal, requireIssuedByUs, verifyProof, type ExpiredRenewalRequest } from '../enrollment/expired-renewal.js';
import type { Grant } from '../enrollment/grant.js';
import type { CaSigner } from './ca-signer.js';
import { readCsr, type CsrParts } from './csr.js';
import { checkKeyPolicy } from './key-policy.js';
import { verifyPossession } from './verify-possession.js';
import { buildDeviceCertificate, randomSerial } from './device-certificate.js';
import { buildCrl } from './crl.js';
import { revokeCertificate, type CertificateRevoked } from './revoke-certificate.js';
import type { ApproveEnrollment } from '../hooks/enroll-hook.js';

export interface AuthorityOptions {
  store: Store;
  signer: CaSigner;
  trustDomain: string;
  /** PEM of the issuing intermediate, appended to every leaf to form the chain. */
  intermediatePem: string;
  /** Trust anchors handed to devices with every certificate. */
  caBundlePem: string;
  /** Injected clock, ms since the epoch; default Date.now. */
  now?: () => number;
  /** Validity of each CRL; default 24 h. A new one is issued on every revocation and after 1/24 of this. */
  crlValiditySeconds?: number;
  /**
   * The intermediate replaced by a rotation, while certificates it issued live: it signs
   * nothing but its own CRL (`previousCrl()`), so relying parties can check those certificates.
   */
  previousIssuer?: { certificatePem: string; privateKey: KeyObject };
  /** RFC 5280 §4.2.1.13: the URL of `/v1/crl` every issued certificate names (`--public-url`); default none. */
  crlDistributionPoint?: string;
  /** Proof of possession, injected so tests can see when it runs; default verifyPossession. */
  verifyPossession?: (csr: CsrParts) => Promise<KeyObject>;
  /** `--enroll-hook`: asked after every cheap check and before a new enrollment is issued; throws to refuse. */
  approveEnrollment?: ApproveEnrollment;
  /** `--renew-expired-within`: how long after expiry a certificate may still renew (POST /v1/renew-expired), ms; default 0, off. */
  renewExpiredWithinMs?: number;
}

/** An issued certificate as every enrollment route answers it. */
export interface Issued {
  readonly identity: Identity;
  readonly serial: string;
  readonly certificatePem: string;
  readonly chainPem: string;
  readonly caBundlePem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly renewAfter: Date;
  /** True when an interrupted enrollment was answered again with its earlier certificate. */
  readonly replayed: boolean;
}

export interface MintTokenRequest {
  subject: string;
  kind?: TokenKind;
  /** Default 24 h; 1 s to 30 days. */
  ttlSeconds?: number;
  /** Lifetime of the certificates it leads to; default 7 days; 1 s to 397 days. */
  certTtlSeconds?: number;
  createdBy: string;
}

export interface Crl {
  readonly der: Buffer;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly number: bigint;
}

export const DEFAULT_TOKEN_TTL_SECONDS = 86_400;
export const MAX_TOKEN_TTL_SECONDS = 30 * 86_400;
export const DEFAULT_CERT_TTL_SECONDS = 7 * 86_400;
export const MAX_CERT_TTL_SECONDS = 397 * 86_400;
/** notBefore is backdated this much for clock skew, but never by more than the lifetime. */
export const BACKDATE_MS = NOT_BEFORE_BACKDATE_MS;

/**
 * The certificate authority: enrollment, renewal, revocation and CRLs. Knows nothing of
 * HTTP; every refusal is a TlsfleetError with a stable code, and changes nothing.
 */
export class Authority {
  readonly trustDomain: string;
  private readonly store: Store;
  private readonly signer: CaSigner;
  private readonly intermediatePem: string;
  /** The signing intermediate's key identifier, lower-case hex: each certificate's AKI. */
  readonly issuerKeyId: string;
  private readonly caBundlePem: string;
  private readonly now: () => number;
  private readonly crlValidityMs: number;
  private readonly crlIssuers: { current: CrlIssuer; previous: CrlIssuer | undefined };
  private readonly verifyPossession: (csr: CsrParts) => Promise<KeyObject>;
  private readonly crlDistributionPoint: string | undefined;
  private readonly approveEnrollment: ApproveEnrollment | undefined;
  /** How long after expiry a certificate may renew, ms; 0: never (the route does not exist). */
  readonly renewExpiredWithinMs: number;
  private readonly issuerCertificates: readonly X509Certificate[];

  constructor(opts: AuthorityOptions) {
    this.store = opts.store;
    this.signer = opts.signer;
    this.trustDomain = opts.trustDomain;
    this.intermediatePem = opts.intermediatePem.trim() + '\n';
    this.issuerKeyId = this.signer.keyIdentifier.toString('hex');
    this.caBundlePem = opts.caBundlePem;
    this.now = opts.now ?? Date.now;
    this.crlValidityMs = (opts.crlValiditySeconds ?? 86_400) * 1000;
    this.verifyPossession = opts.verifyPossession ?? verifyPossession;
    this.crlDistributionPoint = opts.crlDistributionPoint;
    this.approveEnrollment = opts.approveEnrollment;
    this.renewExpiredWithinMs = opts.renewExpiredWithinMs ?? 0;
    this.issuerCertificates = [this.intermediatePem, opts.previousIssuer?.certificatePem].filter((pem) => pem !== undefined).map((pem) => new X509Certificate(pem));
    this.crlIssuers = {
      current: { certificatePem: this.intermediatePem, privateKey: this.signer.privateKey },
      previous: opts.previousIssuer && { ...opts.previousIssuer },
    };
  }

  /**
   * Cheapest check first, so no refusal costs a signature verification (issue 19):
   * readCsr (DER, no crypto) → authorizeToken (a lookup; spends nothing) → acceptKey
   * (checkKeyPolicy → verifyPossession) → the enrollment hook, if any → issue → record
   * (spends the token). A replay answers an already approved certificate: no hook. `address`
   * is the client's, for the hook.
   */
  async enroll(token: string, csrDer: Uint8Array, from: { address?: string } = {}): Promise<Issued> {
    const csr = readCsrWithHash(csrDer);
    const now = this.now();
    const auth = await authorizeToken(this.store, token, csr.spkiHash, now, this.trustDomain);
    await this.acceptKey(csr);
    if (auth.outcome === 'replay') return this.answer(auth.certificate, true);
    const { grant, tokenHash } = auth;
    await this.checkSubjectKind(grant.identity);
    await this.approveEnrollment?.({ device: grant.identity.name, kind: grant.identity.kind as TokenKind, publicKeySha256: csr.spkiHash, address: from.address ?? '' });
    const cert = this.issue(grant, csr, now);
    const recorded = await this.store.recordEnrollment({
      tokenHash,
      spkiHash: csr.spkiHash,
      device: { id: grant.identity.name, kind: grant.identity.kind as TokenKind, createdAt: now, certTtlSeconds: grant.certTtlSeconds },
      certificate: cert,
    });
    // Another request spent the token between authorization and recording: ours is
    // discarded unsent, and the winner's answer decides (replay for the same key).
    if (!recorded) return this.enroll(token, csrDer, from);
    return this.answer(cert, false);
  }

  /** readCsr → authorizeRenewal → acceptKey (policy, then possession) → refuse key reuse → issue → record. */
  async renew(peer: PeerCertificate, csrDer: Uint8Array): Promise<Issued> {
    const csr = readCsrWithHash(csrDer);
    const grant = await authorizeRenewal(this.store, peer, this.now());
    await this.acceptKey(csr);
    requireFreshKey(csr.spkiDer, peer.spkiDer);
    const { certificate, replayed } = await renewInLineage(this.store, grant, csr.spkiHash, () => this.issue(grant, csr, this.now()));
    return this.answer(certificate, replayed);
  }

  /**
   * Renewal of a certificate that expired less than `renewExpiredWithinMs` ago, cheapest first:
   * readCsr → the issuer's signature on the certificate, validity ignored → the store (expired,
   * window, ours, revoked, lineage) → key policy → the proof by the old key → possession of the
   * new key → refuse key reuse → issue and record as a renewal (same lineage and replay rules).
   */
  async renewExpired(req: ExpiredRenewalRequest): Promise<Issued> {
    if (this.renewExpiredWithinMs <= 0) throw new TlsfleetError('not_found', 'No such route.');
    const csr = readCsrWithHash(req.csrDer);
    requireIssuedByUs(req.certificate, this.issuerCertificates);
    const grant = await authorizeExpiredRenewal(this.store, req.peer, this.now(), this.renewExpiredWithinMs);
    checkKeyPolicy(csr.key);
    verifyProof(req.certificate.publicKey, req.csrDer, req.proof);
    await this.verifyPossession(csr);
    requireFreshKey(csr.spkiDer, req.peer.spkiDer);
    const { certificate, replayed } = await renewInLineage(this.store, grant, csr.spkiHash, () => this.issue(grant, csr, this.now()));
    return this.answer(certificate, replayed);
  }

  async mintToken(req: MintTokenRequest): Promise<{ token: string; expiresAt: Date }> {
    const kind = req.kind ?? 'device';
    if (kind !== 'device' && kind !== 'service') throw new TlsfleetError('invalid_request', 'kind must be "device" or "service".');
    if (!isValidName(req.subject)) {
      throw new TlsfleetError('invalid_request', 'Device ids are 1–64 characters of A-Z a-z 0-9 . _ - and start with a letter or digit.');
    }
    const ttl = seconds(req.ttlSeconds, DEFAULT_TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS, 'ttlSeconds');
    const certTtl = seconds(req.certTtlSeconds, DEFAULT_CERT_TTL_SECONDS, MAX_CERT_TTL_SECONDS, 'certTtlSeconds');
    await this.checkSubjectKind({ kind, name: req.subject, trustDomain: this.trustDomain });
    const token = newToken();
    const now = this.now();
    const expiresAt = now + ttl * 1000;
    await this.store.createToken({
      hash: hashToken(token),
      subject: req.subject,
      kind,
      expiresAt,
      certTtlSeconds: certTtl,
      createdAt: now,
      createdBy: req.createdBy,
    });
    return { token, expiresAt: new Date(expiresAt) };
  }

  /**
   * Revokes every live certificate of the device and cancels the tokens minted for it so far;
   * `not_found` only when there was neither a device nor a token to cancel.
   */
  async revoke(deviceId: string, by: string): Promise<string[]> {
    if (!isValidName(deviceId)) throw new TlsfleetError('invalid_request', 'Not a valid device id.');
    const known = (await this.store.findDevice(deviceId)) !== undefined;
    const { serials, tokensCancelled } = await this.store.revokeDevice(deviceId, this.now(), by);
    if (!known && tokensCancelled === 0) throw new TlsfleetError('not_found', `No device ${deviceId}.`);
    if (serials.length > 0) for (const issuer of Object.values(this.crlIssuers)) if (issuer) issuer.cache = undefined;
    return serials;
  }

  /** Revokes one certificate with an RFC 5280 reason; see revokeCertificate. */
  async revokeCertificate(serialHex: string, reason: unknown, by: string): Promise<CertificateRevoked> {
    const revoked = await revokeCertificate(this.store, serialHex, reason, by, this.now());
    if (!revoked.alreadyRevoked) for (const issuer of Object.values(this.crlIssuers)) if (issuer) issuer.cache = undefined;
    return revoked;
  }

  async device(id: string): Promise<{ device: DeviceRecord; certificates: CertificateRecord[] }> {
    if (!isValidName(id)) throw new TlsfleetError('invalid_request', 'Not a valid device id.');
    const device = await this.store.findDevice(id);
    if (!device) throw new TlsfleetError('not_found', `No device ${id}.`);
    return { device, certificates: await this.store.listCertificates(id) };
  }

  async devices(): Promise<DeviceRecord[]> {
    return this.store.listDevices();
  }

  /**
   * The current CRL, signed by the intermediate. Re-issued when any process sharing the
   * store has recorded a revocation since, and well before nextUpdate.
   */
  crl(): Promise<Crl> {
    return this.crlOf(this.crlIssuers.current);
  }

  /**
   * The previous intermediate's CRL while a rotation overlaps, else undefined. It lists the
   * same serials as `crl()`: serials are random (126 bits), so listing another issuer's
   * serials revokes nothing extra, and each issuer's certificates find a CRL with their
   * issuer name and key identifier, as RFC 5280 §6.3.3 path validation (openssl) requires.
   */
  previousCrl(): Promise<Crl> | undefined {
    return this.crlIssuers.previous && this.crlOf(this.crlIssuers.previous);
  }

  private async crlOf(issuer: CrlIssuer): Promise<Crl> {
    const version = await this.store.revocationVersion();
    const cached = issuer.cache;
    const refreshAt = cached && cached.crl.thisUpdate.getTime() + this.crlValidityMs / 24;
    if (cached && cached.revocationVersion === version && refreshAt !== undefined && this.now() < refreshAt) return cached.crl;
    // One signing at a time; concurrent callers share it.
    issuer.pending ??= this.issueCrl(issuer, version).finally(() => (issuer.pending = undefined));
    return issuer.pending;
  }

  private async issueCrl(issuer: CrlIssuer, version: number): Promise<Crl> {
    const now = this.now();
    const entries = await this.store.listRevoked(now);
    const thisUpdate = new Date(now);
    const nextUpdate = new Date(now + this.crlValidityMs);
    // At least the issuing time in milliseconds: a store restored from a backup would otherwise
    // number CRLs below the ones running brokers hold, and they ignore those (RFC 5280 §5.2.3).
    // Below 2^53 for millennia, so the brokers' gauge holds it exactly.
    const number = await this.store.nextCrlNumber(BigInt(now));
    const der = await buildCrl({
      issuerCertificatePem: issuer.certificatePem,
      issuerKey: issuer.privateKey,
      entries: entries.map((e) => ({ serialHex: e.serial, revokedAt: new Date(e.revokedAt), reason: e.reason })),
      thisUpdate,
      nextUpdate,
      crlNumber: number,
    });
    const crl = { der, thisUpdate, nextUpdate, number };
    issuer.cache = { crl, revocationVersion: version };
    return crl;
  }

  /**
   * A device id and a service name may not share a name: the broker's ACL keys on it. An
   * early, friendly refusal only; the store's recordEnrollment checks the kind and inserts in
   * one statement, which is what holds when two instances enroll one name at once.
   */
  private async checkSubjectKind(identity: Identity): Promise<void> {
    const existing = await this.store.findDevice(identity.name);
    if (existing && existing.kind !== identity.kind) {
      throw new TlsfleetError('invalid_request', `${identity.name} is already enrolled as a ${existing.kind}.`);
    }
  }

  /** Key policy on the key as the CSR states it, then the one costly step: proof of possession. */
  private async acceptKey(csr: CsrParts): Promise<KeyObject> {
    checkKeyPolicy(csr.key);
    return this.verifyPossession(csr);
  }

  private issue(grant: Grant, csr: ReadCsr, now: number): Omit<CertificateRecord, 'revokedAt' | 'revokedBy'> {
    const ttlMs = grant.certTtlSeconds * 1000;
    // X.509 times have whole seconds (RFC 5280 §4.1.2.5); the answer must match the certificate.
    const notBefore = new Date(floorToSecond(now - Math.min(BACKDATE_MS, ttlMs)));
    const notAfter = new Date(floorToSecond(now + ttlMs));
    const serial = randomSerial();
    const der = buildDeviceCertificate({
      issuer: this.signer,
      subjectPublicKeyDer: csr.spkiDer,
      identity: grant.identity,
      serial,
      notBefore,
      notAfter,
      crlDistributionPoint: this.crlDistributionPoint,
    });
    return {
      serial: normalizeSerialHex(serial.toString('hex')),
      subject: grant.identity.name,
      kind: grant.identity.kind as TokenKind,
      spkiHash: csr.spkiHash,
      pem: derToPem(der, 'CERTIFICATE'),
      notBefore: notBefore.getTime(),
      notAfter: notAfter.getTime(),
      issuedAt: now,
      issuedBy: grant.actor,
      issuerKeyId: this.issuerKeyId,
    };
  }

  private answer(cert: Pick<CertificateRecord, 'serial' | 'subject' | 'kind' | 'pem' | 'notBefore' | 'notAfter'>, replayed: boolean): Issued {
    return {
      identity: { kind: cert.kind, name: cert.subject, trustDomain: this.trustDomain },
      serial: cert.serial,
      certificatePem: cert.pem,
      chainPem: cert.pem + this.intermediatePem,
      caBundlePem: this.caBundlePem,
      notBefore: new Date(cert.notBefore),
      notAfter: new Date(cert.notAfter),
      renewAfter: new Date(renewAfterMs(cert.notBefore, cert.notAfter, cert.serial)),
      replayed,
    };
  }
}

/** A CA that signs CRLs, with the last CRL it signed and the signing in progress. */
interface CrlIssuer {
  readonly certificatePem: string;
  readonly privateKey: KeyObject;
  cache?: { crl: Crl; revocationVersion: number };
  pending?: Promise<Crl>;
}

/** A CSR read without cryptography, with the SHA-256 of its SPKI (hex); issued only after acceptKey. */
type ReadCsr = CsrParts & { readonly spkiHash: string };

function readCsrWithHash(der: Uint8Array): ReadCsr {
  const csr = readCsr(der);
  return { ...csr, spkiHash: sha256(csr.spkiDer) };
}

function floorToSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function seconds(value: unknown, fallback: number, max: number, name: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new TlsfleetError('invalid_request', `${name} must be a whole number of seconds from 1 to ${max}.`);
  }
  return value;
}
