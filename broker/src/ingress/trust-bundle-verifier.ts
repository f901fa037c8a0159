import type { X509Certificate } from 'node:crypto';
import { isSelfSigned, issuedBy } from '@tlsfleet/common';
import { caConstraints, uriHostPermitted, uriSanHosts, type CaConstraints } from '../trust/ca-constraints.js';

export type ChainRejection = 'unknown_ca' | 'expired' | 'not_yet_valid';

/** Longest path, leaf and root included; ours is leaf → intermediate → root (nginx `ssl_verify_depth 3`). */
const MAX_PATH_CERTIFICATES = 4;

/**
 * Verifies a certificate that arrived outside a TLS handshake (forwarded by an ingress) the
 * way the handshake would: a signature path from the leaf through issuers taken from the
 * trust bundle only, ending at a self-signed certificate of the bundle, every certificate
 * on it within its validity period, every issuer a CA, no more CAs below one than its
 * pathLen allows (the root's included, as OpenSSL does). Node's checkIssued (OpenSSL's
 * X509_check_issued) also matches names and AKI/SKI and, when the issuer has a keyUsage,
 * requires keyCertSign. A CA's name constraints on URIs (a SPIFFE trust domain's) are
 * applied to the URI names of every certificate below it; a path through a CA with any
 * other constraint (name constraints on other name forms, policy constraints) or a
 * critical extension other than basicConstraints and keyUsage is refused: OpenSSL
 * evaluates those on the TLS path and this verifier does not, so it fails closed
 * (`constrainedCas` names them for the log). `replace` swaps the bundle on reload.
 */
export class TrustBundleVerifier {
  private issuers: readonly X509Certificate[];
  /**
   * What the bundle's own certificates verify to, computed once per bundle: the signature
   * checks above the leaf (the P-384 root's on the intermediate, the root's on itself) are
   * the dear ones, and they cannot change until `replace`.
   */
  private readonly known = new Map<X509Certificate, Partial<CaFacts>>();

  constructor(bundle: readonly X509Certificate[]) {
    this.issuers = bundle.filter((c) => c.ca);
  }

  replace(bundle: readonly X509Certificate[]): void {
    this.issuers = bundle.filter((c) => c.ca);
    this.known.clear();
  }

  /** Subjects of the bundle's CAs whose constraints this verifier does not evaluate, so refuses every path through. */
  constrainedCas(): string[] {
    return this.issuers.filter((ca) => unevaluated(this.rulesOf(ca))).map((ca) => ca.subject);
  }

  /** Undefined when `leaf` chains to the bundle and every certificate on the path is valid at `nowMs`. */
  verify(leaf: X509Certificate, nowMs: number): ChainRejection | undefined {
    const leafValidity = validityAt(leaf, nowMs);
    if (leafValidity) return leafValidity;
    let signers: readonly X509Certificate[] = this.signersOf(leaf);
    const below: X509Certificate[] = [leaf];
    for (let n = 1; n < MAX_PATH_CERTIFICATES; n++) {
      // A re-issued CA (same name and key, new validity) may sit beside its expired copy.
      const issuer = signers.find((c) => validityAt(c, nowMs) === undefined);
      if (!issuer) return signers[0] ? validityAt(signers[0], nowMs) : 'unknown_ca';
      const rules = this.rulesOf(issuer);
      // RFC 5280 §4.2.1.9: pathLen counts the CAs that may follow it, the leaf's issuer being the first.
      if (unevaluated(rules) || (rules.pathLen !== undefined && rules.pathLen < n - 1)) return 'unknown_ca';
      const uriNames = rules.uriNames;
      if (uriNames && !below.every((c) => this.uriHostsOf(c).every((host) => host !== undefined && uriHostPermitted(host, uriNames)))) return 'unknown_ca';
      if (this.fact(issuer, 'selfSigned', () => isSelfSigned(issuer))) return undefined;
      below.push(issuer);
      signers = this.fact(issuer, 'signers', () => this.signersOf(issuer));
    }
    return 'unknown_ca';
  }

  private signersOf(cert: X509Certificate): X509Certificate[] {
    return this.issuers.filter((c) => issuedBy(cert, c));
  }

  private rulesOf(ca: X509Certificate): CaConstraints {
    return this.fact(ca, 'rules', () => caConstraints(ca));
  }

  /** A certificate's URI hosts, remembered for the bundle's CAs; the leaf's are read per call (only under URI-constrained CAs). */
  private uriHostsOf(cert: X509Certificate): (string | undefined)[] {
    return cert.ca ? this.fact(cert, 'uriHosts', () => uriSanHosts(cert)) : uriSanHosts(cert);
  }

  /** What one of the bundle's CAs verifies to or says, computed on first use and kept until `replace`. */
  private fact<K extends keyof CaFacts>(ca: X509Certificate, key: K, compute: () => CaFacts[K]): CaFacts[K] {
    let facts = this.known.get(ca);
    if (!facts) this.known.set(ca, (facts = {}));
    return (facts[key] ??= compute()) as CaFacts[K];
  }
}

/** What the verifier learns about a CA of the bundle; none of it can change until `replace`. */
interface CaFacts {
  signers: readonly X509Certificate[];
  selfSigned: boolean;
  rules: CaConstraints;
  uriHosts: (string | undefined)[];
}

function unevaluated(rules: CaConstraints): boolean {
  return rules.unevaluated || rules.otherCritical;
}

function validityAt(cert: X509Certificate, nowMs: number): 'expired' | 'not_yet_valid' | undefined {
  if (nowMs < Date.parse(cert.validFrom)) return 'not_yet_valid';
  if (nowMs > Date.parse(cert.validTo)) return 'expired';
  return undefined;
}
