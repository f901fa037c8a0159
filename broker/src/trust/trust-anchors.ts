import type { X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { derToPem, isSelfSigned, issuedBy, subjectKeyId } from '@tlsfleet/common';
import { caConstraints } from './ca-constraints.js';

export type AnchorFault = 'expired' | 'not_yet_valid';

/** When a path from a leaf's issuer to a root of the bundle is valid, ms since the epoch, both ends included. */
interface Window {
  readonly from: number;
  readonly to: number;
}

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
/**
 * Signature algorithms a root may have signed an anchored intermediate with: ECDSA and RSA
 * with SHA-2, RSASSA-PSS, EdDSA. Never SHA-1 or MD5, which OpenSSL's security level may
 * refuse on a full chain.
 */
const STRONG_SIGNATURES = new Set([
  '1.2.840.10045.4.3.2', '1.2.840.10045.4.3.3', '1.2.840.10045.4.3.4',
  '1.2.840.113549.1.1.11', '1.2.840.113549.1.1.12', '1.2.840.113549.1.1.13', '1.2.840.113549.1.1.10',
  '1.3.101.112', '1.3.101.113',
]);

/**
 * The trust bundle as the TLS server gets it, and what that leaves for us to check.
 *
 * OpenSSL re-verifies the root's signature on the intermediate at every handshake. Ours is
 * P-384, which OpenSSL 3.0 computes with generic big-number code: 12 % of the broker's CPU
 * per new connection (perf), for a signature that cannot change while the bundle does not.
 * So each intermediate whose signature verifies against a root of the bundle (checked here,
 * once per load) goes to Node's `ca` as a TRUSTED CERTIFICATE, trusted for client
 * authentication, and OpenSSL ends the chain at it: only the leaf's signature is verified
 * per handshake. (The partial-chain flag would do the same, but Node 20's tls.Server drops
 * `allowPartialTrustChain`.)
 *
 * OpenSSL does not check an explicitly trusted intermediate's validity period, nor the
 * root's it no longer reaches: `fault` does, for every connection TLS accepted. Everything
 * else OpenSSL still checks on the intermediate (CA, keyCertSign, pathLen, its own name
 * constraints). An intermediate is anchored only where skipping the root loses nothing but
 * that one signature and the validity periods: under a self-signed root of the bundle with no
 * critical extension but basicConstraints and keyUsage, no pathLen 0, no name or policy
 * constraints, signed with SHA-2 or EdDSA. Roots and every other CA certificate go to TLS
 * unchanged and are verified in full at each handshake.
 */
export class TrustAnchors {
  private constructor(
    /** PEM for the TLS server's `ca`: the bundle, anchored intermediates as TRUSTED CERTIFICATE. */
    readonly caPem: string,
    private readonly windows: ReadonlyMap<string, readonly Window[]>,
  ) {}

  static of(bundle: readonly X509Certificate[]): TrustAnchors {
    const roots = bundle.filter((c) => isSelfSigned(c) && mayBeSkipped(c));
    const windows = new Map<string, Window[]>();
    const blocks = bundle.map((cert) => {
      const ski = cert.ca && !cert.checkIssued(cert) && strongSignature(cert) ? subjectKeyId(cert.raw) : undefined;
      const signers = ski ? roots.filter((root) => issuedBy(cert, root)) : [];
      if (!ski || signers.length === 0) return derToPem(cert.raw, 'CERTIFICATE');
      const own = validity(cert);
      const paths = signers.map((root) => {
        const r = validity(root);
        return { from: Math.max(own.from, r.from), to: Math.min(own.to, r.to) };
      });
      windows.set(ski, [...(windows.get(ski) ?? []), ...paths]);
      return derToPem(Buffer.concat([cert.raw, CLIENT_AUTH_TRUST]), 'TRUSTED CERTIFICATE');
    });
    return new TrustAnchors(blocks.join(''), windows);
  }

  /** How many intermediates (by key) OpenSSL trusts directly. */
  get anchored(): number {
    return this.windows.size;
  }

  /**
   * For a leaf that TLS accepted, named by its issuer's key id (the AKI, which OpenSSL
   * matched to the issuer it used): whether no path from that issuer to a root was valid at
   * `nowMs`. Undefined when one was, or when the issuer is no anchored intermediate (OpenSSL
   * then verified the whole chain, validity included).
   */
  fault(authorityKeyId: string | undefined, nowMs: number): AnchorFault | undefined {
    const paths = authorityKeyId === undefined ? undefined : this.windows.get(authorityKeyId);
    if (!paths || paths.some((w) => w.from <= nowMs && nowMs <= w.to)) return undefined;
    return paths.every((w) => nowMs < w.from) ? 'not_yet_valid' : 'expired';
  }
}

/**
 * OpenSSL's X509_CERT_AUX after the certificate in a TRUSTED CERTIFICATE PEM block:
 * `SEQUENCE { trust SEQUENCE OF OBJECT IDENTIFIER }`, here clientAuth alone, the purpose a
 * TLS server checks a client chain for.
 */
const CLIENT_AUTH_TRUST = Buffer.from(
  new asn1js.Sequence({ value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: CLIENT_AUTH })] })] }).toBER(),
);

function validity(cert: X509Certificate): Window {
  return { from: Date.parse(cert.validFrom), to: Date.parse(cert.validTo) };
}

/** Whether OpenSSL would check nothing on this root but what `of` and `fault` check instead. */
function mayBeSkipped(root: X509Certificate): boolean {
  const c = caConstraints(root);
  // pathLen 0 makes the full chain invalid; OpenSSL refuses a critical extension it does not know.
  return !c.binding && !c.otherCritical && c.pathLen !== 0;
}

function strongSignature(cert: X509Certificate): boolean {
  return STRONG_SIGNATURES.has(pkijs.Certificate.fromBER(cert.raw).signatureAlgorithm.algorithmId);
}
