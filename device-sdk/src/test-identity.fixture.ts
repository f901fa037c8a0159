import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceIdentity } from './credential-store.js';
import { generateDeviceKey } from './keys.js';

/** A self-signed identity from the real openssl: enough for the store, which checks key ↔ certificate. */
export async function testIdentity(deviceId = 'd1', lifetimeMs = 3_600_000): Promise<DeviceIdentity> {
  const key = await generateDeviceKey();
  const dir = mkdtempSync(join(tmpdir(), 'tlsfleet-sdk-id-'));
  try {
    writeFileSync(join(dir, 'key.pem'), key.privateKeyPem, { mode: 0o600 });
    const cert = execFileSync('openssl', ['req', '-x509', '-new', '-key', join(dir, 'key.pem'), '-subj', `/CN=${deviceId}`, '-days', '1'], { encoding: 'utf8' });
    const now = Date.now();
    return {
      deviceId,
      privateKeyPem: key.privateKeyPem,
      certificatePem: cert,
      chainPem: cert,
      caBundlePem: cert,
      serial: '01',
      notBefore: new Date(now).toISOString(),
      notAfter: new Date(now + lifetimeMs).toISOString(),
      renewAfter: new Date(now + (lifetimeMs * 2) / 3).toISOString(),
      provisioningUrl: 'https://127.0.0.1:1',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function tempStateDir(): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'tlsfleet-sdk-state-'));
  return { path: join(path, 'state'), cleanup: () => rmSync(path, { recursive: true, force: true }) };
}
