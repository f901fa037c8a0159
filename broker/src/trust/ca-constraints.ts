import type { X509Certificate } from 'node:crypto';
import type * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

const BASIC_CONSTRAINTS = '2.5.29.19';
const KEY_USAGE = '2.5.29.15';
const SUBJECT_ALT_NAME = '2.5.29.17';
const NAME_CONSTRAINTS = '2.5.29.30';
/** Policy constraints, inhibit anyPolicy (RFC 5280 §4.2.1.11, §4.2.1.14). */
const POLICY_EXTENSIONS = new Set(['2.5.29.36', '2.5.29.54']);
/** GeneralName's uniformResourceIdentifier choice (RFC 5280 §4.2.1.6). */
const URI_NAME = 6;

/** Name constraints on URIs: hosts (`example.com`) or domains (`.example.com`), lower case. */
export interface UriSubtrees {
  readonly permitted: readonly string[];
  readonly excluded: readonly string[];
}

/** What a CA certificate says about the paths below it, beyond its signature and validity. */
export interface CaConstraints {
  /** basicConstraints' pathLenConstraint: the most intermediates that may follow it (RFC 5280 §4.2.1.9); undefined for no limit. */
  readonly pathLen: number | undefined;
  /** It carries name, policy or inhibit-anyPolicy constraints, which bind every certificate below it. */
  readonly binding: boolean;
  /** Its name constraints, when it has some and every subtree is a plain URI one (as a SPIFFE trust domain's are). */
  readonly uriNames: UriSubtrees | undefined;
  /** It carries constraints not evaluated here: name constraints on other name forms or with bounds, policy constraints, inhibit anyPolicy. */
  readonly unevaluated: boolean;
  /** It carries a critical extension other than basicConstraints, keyUsage and the binding ones. */
  readonly otherCritical: boolean;
}

export function caConstraints(cert: X509Certificate): CaConstraints {
  let pathLen: number | undefined;
  let uriNames: UriSubtrees | undefined;
  let unevaluated = false;
  let otherCritical = false;
  for (const ext of pkijs.Certificate.fromBER(cert.raw).extensions ?? []) {
    if (ext.extnID === NAME_CONSTRAINTS) {
      uriNames = uriSubtrees(ext.parsedValue as pkijs.NameConstraints | undefined);
      if (!uriNames) unevaluated = true;
    } else if (POLICY_EXTENSIONS.has(ext.extnID)) unevaluated = true;
    else if (ext.extnID === BASIC_CONSTRAINTS) pathLen = integer((ext.parsedValue as pkijs.BasicConstraints | undefined)?.pathLenConstraint);
    else if (ext.critical && ext.extnID !== KEY_USAGE) otherCritical = true;
  }
  return { pathLen, binding: uriNames !== undefined || unevaluated, uriNames, unevaluated, otherCritical };
}

/**
 * Whether a URI's host lies within the subtrees (RFC 5280 §4.2.1.10): `.example.com` takes
 * any host below example.com but not example.com itself, `example.com` that host only;
 * excluded subtrees win, and permitted ones, when there are any, must take it.
 */
export function uriHostPermitted(host: string, subtrees: UriSubtrees): boolean {
  const h = host.toLowerCase();
  const within = (c: string) => (c.startsWith('.') ? h.endsWith(c) : h === c);
  if (subtrees.excluded.some(within)) return false;
  return subtrees.permitted.length === 0 || subtrees.permitted.some(within);
}

/** The hosts of a certificate's URI subject alternative names; undefined for a URI without one. */
export function uriSanHosts(cert: X509Certificate): (string | undefined)[] {
  const san = (pkijs.Certificate.fromBER(cert.raw).extensions ?? []).find((e) => e.extnID === SUBJECT_ALT_NAME);
  const names = (san?.parsedValue as pkijs.AltName | undefined)?.altNames ?? [];
  return names.filter((n) => n.type === URI_NAME).map((n) => {
    try {
      return new URL(String(n.value)).hostname || undefined;
    } catch {
      return undefined;
    }
  });
}

/** The subtrees when every one of them is a URI subtree without bounds (§4.2.1.10: minimum 0, no maximum); else undefined. */
function uriSubtrees(nc: pkijs.NameConstraints | undefined): UriSubtrees | undefined {
  if (!nc) return undefined;
  const hosts = (subtrees: pkijs.GeneralSubtree[] | undefined): string[] | undefined => {
    const out: string[] = [];
    for (const s of subtrees ?? []) {
      if (s.base.type !== URI_NAME || typeof s.base.value !== 'string' || (integer(s.minimum) ?? 0) !== 0 || s.maximum !== undefined) return undefined;
      out.push(s.base.value.toLowerCase());
    }
    return out;
  };
  const permitted = hosts(nc.permittedSubtrees);
  const excluded = hosts(nc.excludedSubtrees);
  return permitted && excluded ? { permitted, excluded } : undefined;
}

function integer(value: number | asn1js.Integer | undefined): number | undefined {
  return typeof value === 'number' ? value : value?.valueBlock.valueDec;
}
