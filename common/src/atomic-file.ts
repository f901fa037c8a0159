import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Named points of an atomic write, so tests can cut the power at each of them. */
export type WriteStep = 'temp-written' | 'temp-synced' | 'renamed' | 'dir-synced';

// O_EXCL: never write through a symlink someone planted at the temp name.
const EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

// Unique per write, not only per process: one service may write the same file twice at once
// (a CRL published by its timer and by a revocation), and two writers must not share a temp.
function tempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** A temp file an interrupted write left behind (the names `tempPath` makes), for start-up clean-up. */
export function isAtomicWriteTemp(name: string): boolean {
  return /^\..+\.\d+\.[0-9a-f]{12}\.tmp$/.test(name);
}

function toBytes(data: string | Uint8Array): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data) : data;
}

/**
 * Writes `data` to `path` so that after a crash or power cut at any instant the file
 * holds either the old content or the new, never a mix: write a temp file beside it,
 * fsync it, rename it over the target, fsync the directory (POSIX rename is atomic; the
 * directory fsync makes the rename itself durable). The fsyncs run off the event loop, so
 * a device (or a simulator running thousands) keeps its connections served meanwhile.
 * `mode` is set explicitly: open's mode passes through the umask.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600, onStep?: (step: WriteStep) => void): Promise<void> {
  const temp = tempPath(path);
  const file = await open(temp, EXCLUSIVE, mode);
  try {
    try {
      await file.chmod(mode);
      await file.writeFile(toBytes(data));
      onStep?.('temp-written');
      await file.sync();
      onStep?.('temp-synced');
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  }
  onStep?.('renamed');
  await syncDirectory(dirname(path));
  onStep?.('dir-synced');
}

/** The same steps, blocking: for start-up paths that have nothing else to serve yet. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, mode = 0o600): void {
  const temp = tempPath(path);
  const fd = openSync(temp, EXCLUSIVE, mode);
  try {
    try {
      fchmodSync(fd, mode);
      const bytes = toBytes(data);
      for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written, bytes.length - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  const dir = openSync(dirname(path), constants.O_RDONLY);
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** Makes a rename or unlink in `dir` durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
