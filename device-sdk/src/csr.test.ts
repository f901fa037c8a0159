import { execFileSync, spawnSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createCsr } from './csr.js';
import { generateDeviceKey, KEY_ALGORITHMS } from './keys.js';

/** openssl 3 exits 0 even when a self-signature fails; it says so on stderr. */
function verifies(csr: string): boolean {
  const r = spawnSync('openssl', ['req', '-verify', '-noout'], { input: csr, encoding: 'utf8' });
  return r.status === 0 && /verify OK/.test(r.stderr + r.stdout) && !/failure/.test(r.stderr + r.stdout);
}

function openssl(args: string[], input: string): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

describe('certificate signing requests', () => {
  it.each(KEY_ALGORITHMS)('a %s request verifies with openssl and carries our public key and nothing else', async (alg) => {
    const key = await generateDeviceKey(alg);
    const csr = createCsr(key, 'sensor-1');
    expect(verifies(csr)).toBe(true);
    const text = openssl(['req', '-noout', '-text'], csr);
    expect(text).toMatch(/Subject: CN ?= ?sensor-1/);
    expect(text).toMatch(/Attributes:\s+\(none\)/);
    expect(text).not.toMatch(/X509v3/);
    const pub = openssl(['req', '-noout', '-pubkey'], csr);
    expect(createPublicKey(pub).export({ type: 'spki', format: 'der' })).toEqual(key.publicKey.export({ type: 'spki', format: 'der' }));
  });

  it('signs P-384 keys with SHA-384 and RSA with SHA-256', async () => {
    expect(openssl(['req', '-noout', '-text'], createCsr(await generateDeviceKey('P-384'), 'x'))).toMatch(/ecdsa-with-SHA384/);
    expect(openssl(['req', '-noout', '-text'], createCsr(await generateDeviceKey('RSA-2048'), 'x'))).toMatch(/sha256WithRSAEncryption/);
  });

  it('a tampered request no longer verifies', async () => {
    const csr = createCsr(await generateDeviceKey(), 'sensor-1');
    const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] = der[der.length - 5]! ^ 0xff;
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(verifies(csr)).toBe(true);
    expect(verifies(pem)).toBe(false);
  });
});
