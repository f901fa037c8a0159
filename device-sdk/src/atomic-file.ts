import { closeSync, fsyncSync, openSync, renameSync, writeSync, unlinkSync, constants } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Named points of an atomic write, so tests can cut the power at each of them. */
export type WriteStep = 'temp-written' | 'temp-synced' | 'renamed' | 'dir-synced';

/**
 * Writes `data` to `path` so that after a crash or power cut at any instant the file
 * holds either the old content or the new, never a mix: write a temp file beside it,
 * fsync it, rename it over the target, fsync the directory (POSIX rename is atomic; the
 * directory fsync makes the rename itself durable).
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600, onStep?: (step: WriteStep) => void): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  // O_EXCL after unlink: never write through a symlink someone planted at the temp name.
  try {
    unlinkSync(temp);
  } catch {
    /* not there */
  }
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    onStep?.('temp-written');
    fsyncSync(fd);
    onStep?.('temp-synced');
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  onStep?.('renamed');
  syncDirectory(dirname(path));
  onStep?.('dir-synced');
}

export function syncDirectory(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
