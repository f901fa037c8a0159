import { ECDH, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { requireFreshKey } from './fresh-key.js';

const spki = (key: KeyObject) => key.export({ type: 'spki', format: 'der' });

/** The same P-256 key with its point compressed (SEC 1 §2.3.3): 0x02/0x03 || X. */
function compressedSpki(key: KeyObject): Buffer {
  const der = spki(key);
  const point = der.subarray(der.length - 65);
  const compressed = ECDH.convertKey(point, 'prime256v1', undefined, undefined, 'compressed') as Buffer;
  // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (34 bytes: 0 unused bits + 33) }
  return Buffer.concat([Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'), compressed]);
}

describe('requireFreshKey', () => {
  const ec = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;

  it('refuses the same EC key, whether encoded alike or with its point compressed', () => {
    const key = ec();
    expect(() => requireFreshKey(spki(key), spki(key))).toThrow(expect.objectContaining({ code: 'key_rejected' }));
    const compressed = compressedSpki(key);
    expect(compressed.equals(spki(key))).toBe(false);
    expect(() => requireFreshKey(compressed, spki(key))).toThrow(expect.objectContaining({ code: 'key_rejected' }));
    expect(() => requireFreshKey(spki(key), compressed)).toThrow(expect.objectContaining({ code: 'key_rejected' }));
  });

  it('accepts a different key of the same or another type', () => {
    const key = ec();
    expect(() => requireFreshKey(spki(ec()), spki(key))).not.toThrow();
    expect(() => requireFreshKey(compressedSpki(ec()), spki(key))).not.toThrow();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    expect(() => requireFreshKey(spki(rsa), spki(key))).not.toThrow();
    expect(() => requireFreshKey(spki(rsa), spki(rsa))).toThrow(expect.objectContaining({ code: 'key_rejected' }));
  });
});
