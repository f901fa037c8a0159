import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAtomicWriteTemp, writeFileAtomic, writeFileAtomicSync, type WriteStep } from './atomic-file.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tlsfleet-atomic-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  it('replaces the content and leaves no temp file', async () => {
    const target = join(dir, 'crl.der');
    writeFileSync(target, 'old');
    const steps: WriteStep[] = [];
    await writeFileAtomic(target, 'new', 0o644, (step) => steps.push(step));
    expect(readFileSync(target, 'utf8')).toBe('new');
    expect(steps).toEqual(['temp-written', 'temp-synced', 'renamed', 'dir-synced']);
    expect(readdirSync(dir)).toEqual(['crl.der']);
  });

  it('sets the mode asked for whatever the umask', async () => {
    const previous = process.umask(0o077);
    try {
      const target = join(dir, 'bundle.pem');
      await writeFileAtomic(target, 'x', 0o644);
      expect(statSync(target).mode & 0o777).toBe(0o644);
      writeFileAtomicSync(join(dir, 'key.pem'), 'k');
      expect(statSync(join(dir, 'key.pem')).mode & 0o777).toBe(0o600);
    } finally {
      process.umask(previous);
    }
  });

  it('lets two writes of one file run at once without sharing a temp', async () => {
    const target = join(dir, 'crl.der');
    await Promise.all([writeFileAtomic(target, 'a'.repeat(100_000)), writeFileAtomic(target, 'b'.repeat(100_000))]);
    expect(['a', 'b']).toContain(readFileSync(target, 'utf8')[0]);
    expect(new Set(readFileSync(target, 'utf8')).size).toBe(1);
    expect(readdirSync(dir)).toEqual(['crl.der']);
  });

  it('removes its temp when the rename fails, async and sync', async () => {
    const target = join(dir, 'occupied');
    mkdirSync(join(target, 'child'), { recursive: true });
    await expect(writeFileAtomic(target, 'x')).rejects.toThrow();
    expect(() => writeFileAtomicSync(target, 'x')).toThrow();
    expect(readdirSync(dir)).toEqual(['occupied']);
  });
});

describe('isAtomicWriteTemp', () => {
  it.each([
    ['.credentials.json.1234.0123456789ab.tmp', true],
    ['.queue.jsonl.1.abcdefabcdef.tmp', true],
    ['credentials.json', false],
    ['.credentials.json.tmp', false],
    ['.credentials.json.1234.tmp', false],
    ['.credentials.json.1234.0123456789AB.tmp', false],
    ['notes.tmp', false],
  ])('%s → %s', (name, expected) => {
    expect(isAtomicWriteTemp(name)).toBe(expected);
  });
});
