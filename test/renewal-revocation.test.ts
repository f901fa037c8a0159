import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProvisioningEnv, type ProvisioningEnv } from './harness/fleet-env.js';
import { postJson, request } from './harness/https-client.js';
import { makeCsr, newKey, type TestKey } from './harness/csr.js';
import { openssl } from './harness/openssl.js';
import { runCli } from './harness/cli.js';

interface Enrolled {
  key: TestKey;
  chain: string;
  serial: string;
}

describe('renewal over mTLS, revocation and the CRL', () => {
  let env: ProvisioningEnv;
  beforeAll(async () => {
    env = await startProvisioningEnv();
  });
  afterAll(async () => {
    await env?.stop();
  });

  async function enrollDevice(id: string, certTtl = '1h'): Promise<Enrolled> {
    const key = newKey();
    const res = await postJson(`${env.url}/v1/enroll`, { token: await env.token(id, ['--cert-ttl', certTtl]), csr: await makeCsr(key) }, { ca: env.ca });
    expect(res.status).toBe(201);
    return { key, chain: res.json().chain, serial: res.json().serial };
  }
  const renew = (d: Enrolled, csr: string) => postJson(`${env.url}/v1/renew`, { csr }, { ca: env.ca, cert: d.chain, key: d.key.privatePem });
  const adminHeaders = () => ({ authorization: `Bearer ${env.adminToken}` });

  async function crlText(): Promise<string> {
    const res = await request(`${env.url}/v1/crl`, { ca: env.ca });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/pkix-crl');
    const file = join(env.dir, `crl-${Date.now()}-${Math.random()}.der`);
    writeFileSync(file, res.body);
    const out = await openssl(['crl', '-inform', 'DER', '-in', file, '-CAfile', join(env.dataDir, 'intermediate-ca.pem'), '-noout', '-verify', '-text']);
    expect(out.stderr + out.stdout).toContain('verify OK');
    return out.stdout.toLowerCase();
  }

  it('renews with a fresh key over mTLS: same identity and lifetime, new serial', async () => {
    const d = await enrollDevice('renew-1');
    const res = await renew(d, await makeCsr(newKey()));
    expect(res.status).toBe(201);
    const body = res.json();
    expect(body.deviceId).toBe('renew-1');
    expect(body.serial).not.toBe(d.serial);
    const cert = new X509Certificate(body.certificate);
    expect(cert.subjectAltName).toBe('URI:spiffe://tlsfleet.local/device/renew-1');
    const life = Date.parse(cert.validTo) - Date.now();
    expect(life).toBeGreaterThan(3500_000);
    expect(life).toBeLessThanOrEqual(3600_000);
  });

  it('refuses a renewal that reuses the current key with key_rejected', async () => {
    const d = await enrollDevice('renew-same-key');
    const res = await renew(d, await makeCsr(d.key));
    expect(res.status).toBe(400);
    expect(res.json().error.code).toBe('key_rejected');
  });

  it('refuses a renewal without a client certificate with 401', async () => {
    const res = await postJson(`${env.url}/v1/renew`, { csr: await makeCsr(newKey()) }, { ca: env.ca });
    expect(res.status).toBe(401);
    expect(res.json().error.code).toBe('unauthorized');
  });

  it('refuses the admin certificate and foreign certificates for renewal', async () => {
    const adminCert = readFileSync(join(env.dataDir, 'admin.pem'), 'utf8');
    const adminKey = readFileSync(join(env.dataDir, 'admin.key'), 'utf8');
    const res = await postJson(`${env.url}/v1/renew`, { csr: await makeCsr(newKey()) }, { ca: env.ca, cert: adminCert, key: adminKey });
    expect(res.status).toBe(403);
    expect(res.json().error.code).toBe('forbidden');
  });

  it('revokes through the API: renewal answers 403 revoked and the signed CRL lists every serial', async () => {
    const d = await enrollDevice('revoke-api');
    const renewed = await renew(d, await makeCsr(newKey()));
    expect(renewed.status).toBe(201);
    const res = await postJson(`${env.url}/v1/devices/revoke-api/revoke`, {}, { ca: env.ca, headers: adminHeaders() });
    expect(res.status).toBe(200);
    expect(res.json().revoked.sort()).toEqual([d.serial, renewed.json().serial].sort());
    const again = await renew(d, await makeCsr(newKey()));
    expect(again.status).toBe(403);
    expect(again.json().error.code).toBe('revoked');
    const text = await crlText();
    expect(text.replace(/:/g, '')).toContain(d.serial);
    const device = await request(`${env.url}/v1/devices/revoke-api`, { ca: env.ca, headers: adminHeaders() });
    expect(device.json().certificates.map((c: { status: string }) => c.status)).toEqual(['revoked', 'revoked']);
  });

  it('sees a revocation made by `tlsfleet revoke` against the data dir on the very next CRL', async () => {
    const d = await enrollDevice('revoke-cli');
    expect(await crlText()).not.toContain(d.serial);
    const r = await runCli(['revoke', '--data-dir', env.dataDir, '--device', 'revoke-cli']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(d.serial);
    const text = (await crlText()).replace(/[:\s]/g, '');
    expect(text).toContain(d.serial.padStart(d.serial.length + (d.serial.length % 2), '0'));
    const res = await renew(d, await makeCsr(newKey()));
    expect(res.json().error.code).toBe('revoked');
  });

  it('answers not_found when revoking an unknown device and invalid_request for a malformed id', async () => {
    const res = await postJson(`${env.url}/v1/devices/nobody/revoke`, {}, { ca: env.ca, headers: adminHeaders() });
    expect(res.status).toBe(404);
    expect(res.json().error.code).toBe('not_found');
    const bad = await postJson(`${env.url}/v1/devices/${encodeURIComponent('a+b')}/revoke`, {}, { ca: env.ca, headers: adminHeaders() });
    expect(bad.status).toBe(400);
  });

  it('guards admin routes: no credential 401, a wrong token or a device certificate 403, the admin certificate works', async () => {
    const none = await request(`${env.url}/v1/devices`, { ca: env.ca });
    expect(none.status).toBe(401);
    expect(none.json().error.code).toBe('unauthorized');
    const wrong = await request(`${env.url}/v1/devices`, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken.slice(0, -1)}x` } });
    expect(wrong.status).toBe(403);
    expect(wrong.json().error.code).toBe('forbidden');
    const d = await enrollDevice('not-admin');
    const asDevice = await request(`${env.url}/v1/devices`, { ca: env.ca, cert: d.chain, key: d.key.privatePem });
    expect(asDevice.status).toBe(403);
    const mint = await postJson(`${env.url}/v1/tokens`, { deviceId: 'x1' }, { ca: env.ca, cert: d.chain, key: d.key.privatePem });
    expect(mint.status).toBe(403);
    const adminCert = readFileSync(join(env.dataDir, 'admin.pem'), 'utf8');
    const adminKey = readFileSync(join(env.dataDir, 'admin.key'), 'utf8');
    const asAdmin = await request(`${env.url}/v1/devices`, { ca: env.ca, cert: adminCert, key: adminKey });
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.json().devices.map((x: { deviceId: string }) => x.deviceId)).toContain('not-admin');
  });

  it('serves the trust bundle at /v1/ca', async () => {
    const res = await request(`${env.url}/v1/ca`, { ca: env.ca });
    expect(res.status).toBe(200);
    expect(res.text()).toBe(env.ca);
  });
});
