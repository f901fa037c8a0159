import { isPostgresUrl } from '@tlsfleet/provisioning';
import { readSecretFile, withPassword } from './secret-file.js';
import { UsageError } from './usage-error.js';

/**
 * `--store`: absent or "sqlite" → the data dir's SQLite file; postgres:// or postgresql:// → that
 * database. Returns the value to pass on. A refused value is not echoed: it may hold a password.
 */
export function checkStore(store: string | undefined): string | undefined {
  if (store === undefined || store === 'sqlite') return store;
  if (isPostgresUrl(store)) {
    if (!URL.canParse(store)) throw new UsageError('--store: the postgres:// URL does not parse (percent-encode special characters in the user name and password)');
    return store;
  }
  throw new UsageError('--store takes "sqlite" or a postgres://user@host:port/database URL');
}

/** The store URL with the password of `--store-password-file` in it, when one is given. */
export function storeUrlOf(f: { store?: string; 'store-password-file'?: string }): string | undefined {
  const url = checkStore(f.store);
  const file = f['store-password-file'];
  if (file === undefined) return url;
  if (url === undefined || url === 'sqlite') throw new UsageError('--store-password-file applies to a postgres:// --store only');
  return withPassword(url, readSecretFile(file, '--store-password-file'), '--store');
}
