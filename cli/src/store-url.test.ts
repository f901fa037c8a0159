import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { storeUrlOf } from './store-url.js';

const dir = mkdtempSync(join(tmpdir(), 'tlsfleet-store-url-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('storeUrlOf', () => {
  it('puts the password file\'s content into the postgres URL, percent-encoded, as node-postgres decodes it', () => {
    const file = join(dir, 'pw');
    writeFileSync(file, 'p@ss:w/rd%1\n');
    const url = storeUrlOf({ store: 'postgres://fleet@db.internal:5432/fleet', 'store-password-file': file })!;
    expect(decodeURIComponent(new URL(url).password)).toBe('p@ss:w/rd%1');
    expect(new URL(url).username).toBe('fleet');
    expect(new URL(url).host).toBe('db.internal:5432');
  });

  it('leaves the URL alone without a password file, and refuses one without a postgres store', () => {
    expect(storeUrlOf({ store: 'postgres://fleet@db/fleet' })).toBe('postgres://fleet@db/fleet');
    expect(storeUrlOf({})).toBeUndefined();
    expect(() => storeUrlOf({ 'store-password-file': join(dir, 'pw') })).toThrow('--store-password-file applies to a postgres:// --store only');
  });

  it('refuses an empty or missing file without echoing anything from it', () => {
    writeFileSync(join(dir, 'empty'), '\n');
    expect(() => storeUrlOf({ store: 'postgres://u@h/d', 'store-password-file': join(dir, 'empty') })).toThrow(/--store-password-file .*empty: the file is empty/);
    expect(() => storeUrlOf({ store: 'postgres://u@h/d', 'store-password-file': join(dir, 'absent') })).toThrow(/no such file/);
  });
});
