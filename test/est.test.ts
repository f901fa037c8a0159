import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pemToDer } from '@tlsfleet/common';
import { startProvisioningEnv, type ProvisioningEnv } from './harness/fleet-env.js';
import { request } from './harness/https-client.js';
import { makeCsr, newKey } from './harness/csr.js';
import { openssl, tool } from './harness/openssl.js';
import { recipe, REPO_ROOT } from './harness/readme.js';
import { tempDir } from './harness/temp-dir.js';

/** The certificates inside a base64 PKCS#7 certs-only body, as openssl prints them. */
async function certsOf(base64Body: Buffer): Promise<X509Certificate[]> {
  const der = Buffer.from(base64Body.toString('ascii'), 'base64');
  const out = await openssl(['pkcs7', '-inform', 'DER', '-print_certs'], der);
  expect(out.code).toBe(0);
  return [...out.stdout.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0]));
}

describe('EST (RFC 7030) with real curl and openssl', () => {
  let env: ProvisioningEnv;
  beforeAll(async () => {
    env = await startProvisioningEnv();
  });
  afterAll(async () => {
    await env?.stop();
  });

  const csrB64 = async (key = newKey()) => pemToDer(await makeCsr(key), 'CERTIFICATE REQUEST')!.toString('base64');
  const simpleenroll = (body: string, authorization?: string) =>
    request(`${env.url}/.well-known/est/simpleenroll`, {
      ca: env.ca,
      method: 'POST',
      headers: { 'content-type': 'application/pkcs10', ...(authorization ? { authorization } : {}) },
      body,
    });

  it('runs the README recipe: openssl key and CSR, curl simpleenroll with the token, openssl reads the chain', async () => {
    const work = tempDir('tlsfleet-recipe-');
    try {
      const script = recipe('est-enroll');
      // The README runs it from the checkout, where `npx tlsfleet` finds the local bin.
      symlinkSync(join(REPO_ROOT, 'node_modules'), join(work.path, 'node_modules'));
      writeFileSync(join(work.path, 'package.json'), '{"private":true}\n');
      const r = await tool('env', [
        `DATA_DIR=${env.dataDir}`,
        `PROVISIONING=${env.url}`,
        'bash', '-euo', 'pipefail', '-c', `cd ${work.path}\n${script}`,
      ]);
      expect(r.stderr + r.stdout).toContain('spiffe://tlsfleet.local/device/my-device');
      expect(r.code).toBe(0);
      const chain = readFileSync(join(work.path, 'device.pem'), 'utf8');
      const verify = await openssl(['verify', '-purpose', 'sslclient', '-CAfile', join(env.dataDir, 'ca-bundle.pem'), join(work.path, 'device.pem')]);
      expect(verify.code).toBe(0);
      expect(chain.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    } finally {
      work.cleanup();
    }
  });

  it('serves the CA certificates as base64 PKCS#7 certs-only', async () => {
    const res = await request(`${env.url}/.well-known/est/cacerts`, { ca: env.ca });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/pkcs7-mime/);
    const certs = await certsOf(res.body);
    expect(certs.map((c) => c.subject)).toEqual([
      expect.stringContaining('tlsfleet root CA'),
      expect.stringContaining('tlsfleet intermediate CA'),
    ]);
  });

  it('accepts the token raw, base64-encoded as libest sends it, or as the Basic password', async () => {
    const cases: Array<[string, (t: string) => string]> = [
      ['raw', (t) => `Bearer ${t}`],
      ['b64', (t) => `Bearer ${Buffer.from(t).toString('base64')}`],
      ['basic', (t) => `Basic ${Buffer.from(`anyone:${t}`).toString('base64')}`],
    ];
    for (const [name, auth] of cases) {
      const token = await env.token(`est-${name}`);
      const res = await simpleenroll(await csrB64(), auth(token));
      expect(res.status, name).toBe(200);
      const [leaf, intermediate] = await certsOf(res.body);
      expect(leaf?.subjectAltName).toBe(`URI:spiffe://tlsfleet.local/device/est-${name}`);
      expect(intermediate?.subject).toContain('intermediate');
    }
  });

  it('accepts base64 with or without line breaks and a Content-Transfer-Encoding header (RFC 8951)', async () => {
    const variants: Array<[string, (b: string) => string, Record<string, string>]> = [
      ['oneline', (b) => b, {}],
      ['crlf76', (b) => b.match(/.{1,76}/g)!.join('\r\n') + '\r\n', { 'content-transfer-encoding': 'base64' }],
      ['lf64', (b) => b.match(/.{1,64}/g)!.join('\n'), {}],
    ];
    for (const [name, shape, headers] of variants) {
      const token = await env.token(`est-${name}`);
      const res = await request(`${env.url}/.well-known/est/simpleenroll`, {
        ca: env.ca,
        method: 'POST',
        headers: { 'content-type': 'application/pkcs10', authorization: `Bearer ${token}`, ...headers },
        body: shape(await csrB64()),
      });
      expect(res.status, name).toBe(200);
    }
  });

  it('asks for credentials with a 401 naming its schemes when none are sent', async () => {
    const res = await simpleenroll(await csrB64());
    expect(res.status).toBe(401);
    expect(String(res.headers['www-authenticate'])).toMatch(/Bearer/);
    expect(res.json().error.code).toBe('unauthorized');
  });

  it('re-enrolls over mTLS with curl and the current certificate, keeping the identity', async () => {
    const work = tempDir('tlsfleet-reenroll-');
    try {
      const key = newKey();
      const token = await env.token('est-renewer');
      const first = await simpleenroll(await csrB64(key), `Bearer ${token}`);
      const [leaf] = await certsOf(first.body);
      writeFileSync(join(work.path, 'cert.pem'), leaf!.toString());
      writeFileSync(join(work.path, 'key.pem'), key.privatePem, { mode: 0o600 });
      writeFileSync(join(work.path, 'csr.b64'), await csrB64());
      const r = await tool('curl', [
        '--silent', '--show-error', '--cacert', join(env.dataDir, 'ca-bundle.pem'),
        '--cert', join(work.path, 'cert.pem'), '--key', join(work.path, 'key.pem'),
        '-H', 'Content-Type: application/pkcs10', '--data-binary', `@${join(work.path, 'csr.b64')}`,
        '-w', '\n%{http_code}', `${env.url}/.well-known/est/simplereenroll`,
      ]);
      const status = r.stdout.trim().split('\n').pop();
      expect(status).toBe('200');
      const body = Buffer.from(r.stdout.slice(0, r.stdout.lastIndexOf('\n')));
      const [renewed] = await certsOf(body);
      expect(renewed?.subjectAltName).toBe('URI:spiffe://tlsfleet.local/device/est-renewer');
      expect(renewed?.serialNumber).not.toBe(leaf?.serialNumber);
    } finally {
      work.cleanup();
    }
  });

  it('refuses simplereenroll without a client certificate', async () => {
    const res = await request(`${env.url}/.well-known/est/simplereenroll`, { ca: env.ca, method: 'POST', headers: { 'content-type': 'application/pkcs10' }, body: await csrB64() });
    expect(res.status).toBe(401);
    expect(res.json().error.code).toBe('unauthorized');
  });
});
