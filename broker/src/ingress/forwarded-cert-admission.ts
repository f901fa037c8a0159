import { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { identifyPeer, type PeerCertificate } from '@tlsfleet/common';
import { forwardedCertificateDer, forwardedFor, ForwardedHeaderError, type ForwardedCertFormat, type ForwardedHeaderProblem } from './forwarded-cert-header.js';
import type { ChainRejection, TrustBundleVerifier } from './trust-bundle-verifier.js';
import type { TrustedProxies } from './trusted-proxies.js';

export type ForwardedRefusal = 'untrusted_proxy' | ForwardedHeaderProblem | 'bad_certificate' | ChainRejection | 'bad_profile';

/** How one upgrade request fared; `clientAddress` is for logs either way. */
export type Admission =
  | { readonly ok: true; readonly peer: PeerCertificate; readonly clientAddress: string | undefined }
  | { readonly ok: false; readonly status: 401 | 403; readonly reason: ForwardedRefusal; readonly detail: string; readonly clientAddress: string | undefined };

export interface ForwardedCertAdmissionOptions {
  format: ForwardedCertFormat;
  /** The ingress addresses (`--trusted-proxy`): only their requests may assert an identity. */
  trusted: TrustedProxies;
  /** The data dir's current trust bundle (replaced on reload). */
  verifier: TrustBundleVerifier;
  trustDomain: string;
  now: () => number;
}

/**
 * Forwarded-certificate mode: the identity of a WebSocket upgrade is the client certificate
 * a TLS-terminating ingress forwarded in a header, admitted only when, in order, the TCP
 * peer is a trusted proxy, the header is there once and well-formed, the certificate
 * parses, chains to the trust bundle and is within its validity, and it fits the tlsfleet
 * profile (the same identifyPeer as direct connections). Revocation and expiry are then
 * the connect steps' and the session registry's, as for every other connection.
 */
export function forwardedCertAdmission(opts: ForwardedCertAdmissionOptions): (req: IncomingMessage) => Admission {
  return (req) => {
    const proxy = req.socket.remoteAddress;
    const refuse = (status: 401 | 403, reason: ForwardedRefusal, detail: string, clientAddress: string | undefined): Admission => ({ ok: false, status, reason, detail, clientAddress });
    // The header is not even read from anyone else: it would be a claim of any identity.
    if (!opts.trusted.has(proxy)) return refuse(403, 'untrusted_proxy', `${proxy} is not a --trusted-proxy`, proxy);
    const headers = req.headersDistinct;
    const clientAddress = forwardedClientAddress(req, opts.trusted);
    let der: Buffer;
    try {
      der = forwardedCertificateDer(opts.format, headers);
    } catch (err) {
      if (err instanceof ForwardedHeaderError) return refuse(401, err.code, err.message, clientAddress);
      throw err;
    }
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch (err) {
      return refuse(401, 'bad_certificate', (err as Error).message, clientAddress);
    }
    // OpenSSL reads one DER object and may ignore what follows it.
    if (!cert.raw.equals(der)) return refuse(401, 'bad_certificate', 'bytes after the certificate', clientAddress);
    const chain = opts.verifier.verify(cert, opts.now());
    if (chain) return refuse(401, chain, `certificate ${cert.serialNumber}: ${chain}`, clientAddress);
    const peer = identifyPeer(cert, opts.trustDomain);
    if (typeof peer === 'string') return refuse(401, 'bad_profile', `certificate ${cert.serialNumber}: ${peer}`, clientAddress);
    return { ok: true, peer, clientAddress };
  };
}

/**
 * The client's address for logs and limits: from a trusted proxy, the rightmost
 * X-Forwarded-For entry (the one that proxy appended; entries left of it are the client's
 * own claims), else the TCP peer's.
 */
export function forwardedClientAddress(req: IncomingMessage, trusted: TrustedProxies): string | undefined {
  const peer = req.socket.remoteAddress;
  return trusted.has(peer) ? (forwardedFor(req.headersDistinct) ?? peer) : peer;
}
