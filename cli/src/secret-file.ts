import { readFileSync } from 'node:fs';
import { UsageError } from './usage-error.js';

/**
 * A secret kept in a file (`--admin-token-file`, `--store-password-file`, ...), one trailing
 * newline dropped. Errors name the flag and the path, never the content.
 */
export function readSecretFile(path: string, flag: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`${flag} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as NodeJS.ErrnoException).code ?? 'cannot read it'}`);
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '') throw new UsageError(`${flag} ${path}: the file is empty`);
  return secret;
}

/** `url` with its password set (percent-encoded, as node-postgres and the Redis client decode it). */
export function withPassword(url: string, password: string, flag: string): string {
  if (!URL.canParse(url)) throw new UsageError(`${flag} needs a URL to go with (the URL does not parse)`);
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}
