import { createHash, randomBytes } from 'node:crypto';
import { TlsfleetError, type Identity } from '@tlsfleet/common';
import type { CertificateRecord, Store } from '../storage/store.js';
import type { Grant } from './grant.js';

/** Tokens are `tf_` + 192 random bits, base64url. */
export const TOKEN_PATTERN = /^tf_[A-Za-z0-9_-]{22,}$/;

/** A device that lost power mid-enrollment may replay its token with the same key this long. */
export const REPLAY_WINDOW_MS = 10 * 60_000;

export function newToken(): string {
  return `tf_${randomBytes(24).toString('base64url')}`;
}

/**
 * Tokens carry 192 random bits, so a plain SHA-256 suffices (no password stretching) and
 * the lookup by hash leaks nothing useful through timing: an attacker controls the token,
 * not its hash.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export type TokenAuthorization =
  | { readonly outcome: 'grant'; readonly grant: Grant; readonly tokenHash: string }
  | { readonly outcome: 'replay'; readonly certificate: CertificateRecord };

/**
 * Turns a token into a grant, or into the certificate already issued for this token and
 * this key (idempotent replay). Spends nothing: the store spends the token atomically when
 * the certificate is recorded.
 */
export async function authorizeToken(
  store: Store,
  token: string,
  spkiHash: string,
  nowMs: number,
  trustDomain: string,
): Promise<TokenAuthorization> {
  if (!TOKEN_PATTERN.test(token)) throw new TlsfleetError('invalid_token');
  const tokenHash = hashToken(token);
  const record = await store.findToken(tokenHash);
  if (!record) throw new TlsfleetError('invalid_token');
  // A revocation of its subject cancelled it: re-admission takes a token minted after it.
  if (record.cancelledAt !== undefined) {
    throw new TlsfleetError('invalid_token', `This token was cancelled when ${record.subject} was revoked; mint a new token.`);
  }
  if (record.consumedAt !== undefined) {
    if (record.consumedSpkiHash === spkiHash && nowMs - record.consumedAt <= REPLAY_WINDOW_MS && record.consumedSerial) {
      const certificate = await store.findCertificate(record.consumedSerial);
      if (certificate && certificate.revokedAt === undefined) return { outcome: 'replay', certificate };
    }
    throw new TlsfleetError('token_used');
  }
  if (nowMs >= record.expiresAt) throw new TlsfleetError('token_expired');
  const identity: Identity = { kind: record.kind, name: record.subject, trustDomain };
  return {
    outcome: 'grant',
    tokenHash,
    grant: { identity, certTtlSeconds: record.certTtlSeconds, actor: `token:${tokenHash.slice(0, 12)}` },
  };
}
