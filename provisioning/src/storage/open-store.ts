import { PostgresStore, redactConnectionString, type PostgresStoreOptions } from './postgres-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';

/** True for the connection strings `--store` hands to the PostgreSQL store. */
export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//.test(spec);
}

/**
 * Opens the store `spec` names: undefined or "sqlite" → the SQLite file `sqliteFile` (the
 * data dir's); a postgres:// or postgresql:// URL → the PostgreSQL store, migrated on open.
 */
export async function openStore(spec: string | undefined, sqliteFile: string, opts: PostgresStoreOptions = {}): Promise<Store> {
  if (spec === undefined || spec === 'sqlite') return SqliteStore.open(sqliteFile);
  if (isPostgresUrl(spec)) return PostgresStore.open(spec, opts);
  throw new Error(`a store is "sqlite" or a postgres:// URL, not ${JSON.stringify(spec.slice(0, 20))}`);
}

/** What to print about a store: its kind and, for PostgreSQL, the URL without its password. */
export function describeStore(spec: string | undefined): string {
  return spec === undefined || spec === 'sqlite' ? 'sqlite' : isPostgresUrl(spec) ? redactConnectionString(spec) : 'unknown';
}
