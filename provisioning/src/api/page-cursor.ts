import { isValidName, TlsfleetError } from '@tlsfleet/common';

/** The listings that page with a cursor; a cursor of one is refused by the other. */
export type CursorKind = 'devices' | 'audit';

/** Default and largest `limit` of a page. Above the largest is refused, not clamped: a client must not mistake a short page for the whole. */
export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;

/**
 * An opaque cursor: base64url of `<kind>:<last key>`. Opaque so clients do not build or
 * edit them; not a capability (the admin may list everything anyway), so not signed.
 */
export function encodeCursor(kind: CursorKind, lastKey: string): string {
  return Buffer.from(`${kind}:${lastKey}`, 'utf8').toString('base64url');
}

/** The key a cursor resumes after, or `invalid_request` for a garbled, edited or foreign one. */
export function decodeCursor(kind: CursorKind, cursor: string): string {
  const bad = new TlsfleetError('invalid_request', 'cursor is not one this listing handed out; start again without it.');
  if (cursor.length > 200 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  // Canonical form only: a cursor that does not re-encode to itself was not made here.
  if (encodeCursor(kind, text.slice(kind.length + 1)) !== cursor || !text.startsWith(`${kind}:`)) throw bad;
  const key = text.slice(kind.length + 1);
  if (kind === 'devices' ? !isValidName(key) : !/^[1-9][0-9]{0,14}$/.test(key)) throw bad;
  return key;
}

/** A query string parameter given at most once, as a string; `invalid_request` otherwise. */
export function queryParam(query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new TlsfleetError('invalid_request', `${name} may be given once.`);
  return value;
}

/** Refuses parameters a listing does not know: a misspelt filter must not silently list everything. */
export function onlyParams(query: Record<string, unknown>, known: readonly string[]): void {
  const unknown = Object.keys(query).find((k) => !known.includes(k));
  if (unknown !== undefined) throw new TlsfleetError('invalid_request', `Unknown parameter ${JSON.stringify(unknown.slice(0, 40))}; known: ${known.join(', ')}.`);
}

/** `limit`: a whole number from 1 to MAX_PAGE_LIMIT; default DEFAULT_PAGE_LIMIT. */
export function pageLimit(value: string | undefined): number {
  if (value === undefined) return DEFAULT_PAGE_LIMIT;
  if (!/^[0-9]{1,7}$/.test(value) || Number(value) < 1 || Number(value) > MAX_PAGE_LIMIT) {
    throw new TlsfleetError('invalid_request', `limit must be a whole number from 1 to ${MAX_PAGE_LIMIT}.`);
  }
  return Number(value);
}

/** `{items, nextCursor}` from `limit + 1` rows read: the extra row only says whether there is a next page. */
export function page<T>(kind: CursorKind, rows: readonly T[], limit: number, keyOf: (row: T) => string): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(kind, keyOf(last)) : null };
}
