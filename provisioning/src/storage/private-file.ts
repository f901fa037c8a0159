import { chmodSync, closeSync, openSync, statSync } from 'node:fs';

/** Owner read/write only: the store holds token hashes and the issuance record. */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Makes sure `file` exists with mode 0600 before a database library opens it: created
 * owner-only when missing (the mode is given at creation, so there is no window in which it
 * is readable), tightened when an earlier version left it readable by group or others.
 * SQLite creates its `-wal` and `-shm` files with the database file's mode.
 */
export function createPrivateFile(file: string): void {
  closeSync(openSync(file, 'a', PRIVATE_FILE_MODE));
  for (const path of [file, `${file}-wal`, `${file}-shm`]) {
    const mode = statSync(path, { throwIfNoEntry: false })?.mode;
    if (mode !== undefined && (mode & 0o077) !== 0) tighten(path, mode & 0o700);
  }
}

function tighten(path: string, mode: number): void {
  try {
    chmodSync(path, mode);
  } catch (err) {
    // Another user's file (a shared deployment): theirs to fix; opening it still works.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
  }
}
