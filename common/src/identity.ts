/** Device ids and service names: safe as a single MQTT topic level (no `/ + # $` or NUL). */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Default SPIFFE trust domain when `init` is given none. */
export const DEFAULT_TRUST_DOMAIN = 'tlsfleet.local';

/** `device` and `service` identities are issued by enrollment; `admin` only by `init`. */
export type IdentityKind = 'device' | 'service' | 'admin';

export interface Identity {
  readonly kind: IdentityKind;
  /** Device id, service name or admin name; matches NAME_PATTERN. */
  readonly name: string;
  readonly trustDomain: string;
}

// RFC 1035 labels, lower-case as SPIFFE requires (SPIFFE-ID §2.1).
const TRUST_DOMAIN_PATTERN = /^(?=.{1,255}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const KINDS: readonly IdentityKind[] = ['device', 'service', 'admin'];

export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME_PATTERN.test(name);
}

export function isValidTrustDomain(td: unknown): td is string {
  return typeof td === 'string' && TRUST_DOMAIN_PATTERN.test(td);
}

export function spiffeUri(id: Identity): string {
  return `spiffe://${id.trustDomain}/${id.kind}/${id.name}`;
}

/**
 * Parses `spiffe://<td>/<kind>/<name>`; returns undefined for anything else, including
 * other trust domains when `expectedTrustDomain` is given. No percent-decoding: an
 * encoded character can never make a valid name.
 */
export function parseSpiffeUri(uri: string, expectedTrustDomain?: string): Identity | undefined {
  const m = /^spiffe:\/\/([^/]+)\/([a-z]+)\/([^/]+)$/.exec(uri);
  if (!m) return undefined;
  const [, trustDomain, kind, name] = m as unknown as [string, string, string, string];
  if (!isValidTrustDomain(trustDomain) || !isValidName(name)) return undefined;
  if (!(KINDS as readonly string[]).includes(kind)) return undefined;
  if (expectedTrustDomain !== undefined && trustDomain !== expectedTrustDomain) return undefined;
  return { kind: kind as IdentityKind, name, trustDomain };
}
