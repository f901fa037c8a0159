import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { isAtomicWriteTemp, syncDirectory, writeFileAtomic, type WriteStep } from '@tlsfleet/common';
import type { CredentialStore, DeviceIdentity, PendingEnrollment, PendingRenewal, StoredState } from './credential-store.js';
import { DeviceError } from './errors.js';

/** File names in the state directory (stable: operators back them up and inspect them). */
export const STATE_FILES = {
  current: 'identity.json',
  candidate: 'identity.next.json',
  pendingEnrollment: 'enrollment.pending.json',
  pendingRenewal: 'renewal.pending.json',
} as const;

type Slot = keyof typeof STATE_FILES;

const FORMAT = 1;

export interface FileCredentialStoreOptions {
  /** Observes each durable step ('current:renamed', 'candidate:promoted', ...); tests cut the power here. */
  onStep?: (step: string) => void;
}

/**
 * One JSON file per slot (key, certificate, chain, trust bundle and metadata together),
 * mode 0600 in a 0700 directory, each written with temp + fsync + rename. Promoting a
 * renewed identity is a single rename, so there is never a moment without a whole one.
 */
export class FileCredentialStore implements CredentialStore {
  readonly dir: string;
  private readonly onStep: (step: string) => void;

  constructor(dir: string, opts: FileCredentialStoreOptions = {}) {
    this.dir = dir;
    this.onStep = opts.onStep ?? (() => {});
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const mode = statSync(dir).mode & 0o777;
    if (mode & 0o022) throw new DeviceError('state_corrupt', `state directory ${dir} is writable by group or others (mode ${mode.toString(8)}); chmod 700 it`);
    // Temp files of writes cut short by a crash hold key material and will never be renamed.
    for (const name of readdirSync(dir)) if (isAtomicWriteTemp(name)) unlinkSync(join(dir, name));
  }

  async load(): Promise<StoredState> {
    const state: StoredState = {};
    const current = await this.read('current');
    if (current !== undefined) state.current = checkIdentity(current, join(this.dir, STATE_FILES.current));
    // A broken candidate is dropped, never fatal: the current identity still works.
    try {
      const candidate = await this.read('candidate');
      if (candidate !== undefined) state.candidate = checkIdentity(candidate, join(this.dir, STATE_FILES.candidate));
    } catch {
      await this.discardCandidate();
    }
    const pending = await this.read('pendingEnrollment');
    if (pending !== undefined) state.pendingEnrollment = checkPending(pending, join(this.dir, STATE_FILES.pendingEnrollment));
    // Like a broken candidate, a broken pending renewal only costs a fresh key.
    try {
      const renewal = await this.read('pendingRenewal');
      if (renewal !== undefined) state.pendingRenewal = checkPendingRenewal(renewal, join(this.dir, STATE_FILES.pendingRenewal));
    } catch {
      await this.remove('pendingRenewal');
    }
    return state;
  }

  async savePendingEnrollment(pending: PendingEnrollment): Promise<void> {
    await this.write('pendingEnrollment', pending);
  }

  async saveEnrolled(identity: DeviceIdentity): Promise<void> {
    await this.write('current', identity);
    await this.remove('pendingEnrollment');
  }

  async replaceIdentity(identity: DeviceIdentity): Promise<void> {
    // The dead identity's leftovers go first: cut here, the old identity is still whole and
    // the pending enrollment's key asks again. One rename then swaps identity.json.
    await this.discardCandidate();
    await this.remove('pendingRenewal');
    await this.saveEnrolled(identity);
  }

  async saveCandidate(identity: DeviceIdentity): Promise<void> {
    await this.write('candidate', identity);
    await this.remove('pendingRenewal');
  }

  async savePendingRenewal(pending: PendingRenewal): Promise<void> {
    await this.write('pendingRenewal', pending);
  }

  async promoteCandidate(): Promise<void> {
    await rename(this.path('candidate'), this.path('current'));
    this.onStep('candidate:promoted');
    await syncDirectory(this.dir);
    this.onStep('candidate:promote-synced');
  }

  async discardCandidate(): Promise<void> {
    await this.remove('candidate');
  }

  private path(slot: Slot): string {
    return join(this.dir, STATE_FILES[slot]);
  }

  private write(slot: Slot, value: object): Promise<void> {
    return writeFileAtomic(this.path(slot), JSON.stringify({ format: FORMAT, ...value }, null, 2) + '\n', 0o600, (step: WriteStep) => this.onStep(`${slot}:${step}`));
  }

  private async remove(slot: Slot): Promise<void> {
    try {
      await unlink(this.path(slot));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    this.onStep(`${slot}:removed`);
    await syncDirectory(this.dir);
  }

  private async read(slot: Slot): Promise<Record<string, unknown> | undefined> {
    const path = this.path(slot);
    let text: string;
    try {
      const mode = (await stat(path)).mode & 0o777;
      // The file holds a private key: refuse to use one others could have read, and say how to fix it.
      if (mode & 0o077) throw new DeviceError('state_corrupt', `${path} is readable by group or others (mode ${mode.toString(8)}); chmod 600 it or enroll again`);
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const value = JSON.parse(text) as unknown;
      if (typeof value !== 'object' || value === null || (value as { format?: unknown }).format !== FORMAT) throw new Error(`unknown format`);
      return value as Record<string, unknown>;
    } catch (err) {
      throw new DeviceError('state_corrupt', `${path} cannot be read: ${(err as Error).message}`, { cause: err });
    }
  }
}

const IDENTITY_FIELDS = ['deviceId', 'privateKeyPem', 'certificatePem', 'chainPem', 'caBundlePem', 'serial', 'notBefore', 'notAfter', 'renewAfter', 'provisioningUrl'] as const;

function checkIdentity(value: Record<string, unknown>, path: string): DeviceIdentity {
  for (const field of IDENTITY_FIELDS) {
    if (typeof value[field] !== 'string' || value[field] === '') throw new DeviceError('state_corrupt', `${path}: field ${field} is missing`);
  }
  const identity = Object.fromEntries(IDENTITY_FIELDS.map((f) => [f, value[f]])) as unknown as DeviceIdentity;
  try {
    const cert = new X509Certificate(identity.certificatePem);
    if (!cert.checkPrivateKey(createPrivateKey(identity.privateKeyPem))) throw new Error('the key does not match the certificate');
  } catch (err) {
    throw new DeviceError('state_corrupt', `${path}: ${(err as Error).message}`, { cause: err });
  }
  return identity;
}

function checkPending(value: Record<string, unknown>, path: string): PendingEnrollment {
  const { privateKeyPem, provisioningUrl, createdAt } = value;
  if (typeof privateKeyPem !== 'string' || typeof provisioningUrl !== 'string' || typeof createdAt !== 'string') {
    throw new DeviceError('state_corrupt', `${path}: pending enrollment is incomplete`);
  }
  return { privateKeyPem, provisioningUrl, createdAt };
}

function checkPendingRenewal(value: Record<string, unknown>, path: string): PendingRenewal {
  const { privateKeyPem, serial, createdAt } = value;
  if (typeof privateKeyPem !== 'string' || typeof serial !== 'string' || typeof createdAt !== 'string') {
    throw new DeviceError('state_corrupt', `${path}: pending renewal is incomplete`);
  }
  return { privateKeyPem, serial, createdAt };
}
