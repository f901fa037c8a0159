import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renewFraction } from '@tlsfleet/common';
import * as x509 from '@peculiar/x509';
import { startProvisioningEnv, type ProvisioningEnv } from './harness/fleet-env.js';
import { postJson, request } from './harness/https-client.js';
import { makeCsr, newKey } from './harness/csr.js';
import { openssl } from './harness/openssl.js';

describe('enrollment with a one-time token over HTTPS', () => {
  let env: ProvisioningEnv;
  beforeAll(async () => {
    // Twenty enrollments from one address race below; the per-client caps meant for the
    // internet (8 open requests, a request rate) would answer some of them 429 under load.
    env = await startProvisioningEnv({ serviceArgs: ['--client-rate', '0', '--max-inflight-per-client', '0'] });
  });
  afterAll(async () => {
    await env?.stop();
  });

  const enroll = (token: string, csr: string) => postJson(`${env.url}/v1/enroll`, { token, csr }, { ca: env.ca });

  it('issues a certificate that openssl accepts as a strict TLS client certificate with the stable identity profile', async () => {
    const token = await env.token('sensor-1');
    const key = newKey();
    // The CSR asks for another name, CA:true and extra SANs: all of it must be ignored.
    const csr = await makeCsr(key, {
      subject: 'CN=evil-admin, O=attacker',
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.SubjectAlternativeNameExtension([
          { type: 'dns', value: 'evil.example' },
          { type: 'url', value: 'spiffe://tlsfleet.local/device/someone-else' },
        ]),
      ],
    });
    const before = Date.now();
    const res = await enroll(token, csr);
    expect(res.status).toBe(201);
    const body = res.json();
    expect(body.deviceId).toBe('sensor-1');
    expect(body.chain.startsWith(body.certificate)).toBe(true);
    expect(body.caBundle).toBe(env.ca);

    const certFile = join(env.dir, 'sensor-1.pem');
    writeFileSync(certFile, body.certificate);
    const verify = await openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(env.dataDir, 'ca-bundle.pem'), certFile]);
    expect(verify.stdout + verify.stderr).toContain(': OK');
    expect(verify.code).toBe(0);

    const text = (await openssl(['x509', '-in', certFile, '-noout', '-text'])).stdout;
    expect(text).toMatch(/Subject: CN\s*=\s*sensor-1\s*\n/);
    expect(text).toContain('CA:FALSE');
    expect(text).toMatch(/X509v3 Basic Constraints: critical/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\s*\n/);
    expect(text).toMatch(/X509v3 Extended Key Usage:\s*\n\s*TLS Web Client Authentication\s*\n/);
    expect(text).toContain('X509v3 Subject Key Identifier');
    expect(text).toContain('X509v3 Authority Key Identifier');
    expect(text).not.toContain('evil');
    expect(text).not.toContain('someone-else');
    const san = /X509v3 Subject Alternative Name:\s*\n\s*(.*)\n/.exec(text)?.[1];
    expect(san).toBe('URI:spiffe://tlsfleet.local/device/sensor-1');

    const cert = new X509Certificate(body.certificate);
    expect(BigInt(`0x${cert.serialNumber}`) >= 2n ** 63n || cert.serialNumber.length >= 16).toBe(true);
    const notBefore = Date.parse(cert.validFrom);
    const notAfter = Date.parse(cert.validTo);
    // Backdated five minutes for clock skew; seven days by default.
    expect(before - notBefore).toBeGreaterThan(4 * 60_000);
    expect(before - notBefore).toBeLessThan(6 * 60_000);
    expect(notAfter - before).toBeGreaterThan(7 * 86_400_000 - 60_000);
    expect(Date.parse(body.notAfter)).toBe(notAfter);
    // 60-75 % of the lifetime counted from issuance (5 minutes after the backdated notBefore), picked from the serial.
    const issued = notBefore + 5 * 60_000;
    expect(Math.abs(Date.parse(body.renewAfter) - (issued + (notAfter - issued) * renewFraction(body.serial)))).toBeLessThan(2000);
    expect(Date.parse(body.renewAfter)).toBeGreaterThanOrEqual(issued + (notAfter - issued) * 0.6 - 1000);
    expect(Date.parse(body.renewAfter)).toBeLessThanOrEqual(issued + (notAfter - issued) * 0.75 + 1000);
  });

  it('honours a per-token certificate lifetime in seconds', async () => {
    const token = await env.token('short-lived', ['--cert-ttl', '30s']);
    const res = await enroll(token, await makeCsr(newKey()));
    expect(res.status).toBe(201);
    const cert = new X509Certificate(res.json().certificate);
    expect(Date.parse(cert.validTo) - Date.now()).toBeLessThanOrEqual(30_000);
    expect(Date.parse(res.json().renewAfter)).toBeGreaterThan(Date.now() - 1000);
  });

  it('answers the same certificate when an interrupted enrollment is replayed with the same key, and token_used for another key', async () => {
    const token = await env.token('replayer');
    const key = newKey();
    const first = await enroll(token, await makeCsr(key));
    expect(first.status).toBe(201);
    const again = await enroll(token, await makeCsr(key));
    expect(again.status).toBe(200);
    expect(again.json().certificate).toBe(first.json().certificate);
    const other = await enroll(token, await makeCsr(newKey()));
    expect(other.status).toBe(409);
    expect(other.json().error.code).toBe('token_used');
  });

  it('lets exactly one of 20 concurrent enrollments with one token succeed', async () => {
    const token = await env.token('racer');
    const csrs = await Promise.all(Array.from({ length: 20 }, () => makeCsr(newKey())));
    const answers = await Promise.all(csrs.map((csr) => enroll(token, csr)));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 409 && a.json().error.code === 'token_used')).toHaveLength(19);
    const device = await request(`${env.url}/v1/devices/racer`, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
    expect(device.json().certificates).toHaveLength(1);
  });

  it('accepts RSA-2048 and P-384 device keys', async () => {
    for (const kind of ['rsa2048', 'P-384'] as const) {
      const res = await enroll(await env.token(`key-${kind}`), await makeCsr(newKey(kind)));
      expect(res.status).toBe(201);
    }
  });

  it('issues service identities from service tokens minted online by an admin', async () => {
    const minted = await postJson(`${env.url}/v1/tokens`, { deviceId: 'ingest', kind: 'service', certTtlSeconds: 3600 }, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
    expect(minted.status).toBe(201);
    expect(minted.json().deviceId).toBe('ingest');
    expect(Date.parse(minted.json().expiresAt)).toBeGreaterThan(Date.now() + 23 * 3600_000);
    const res = await enroll(minted.json().token, await makeCsr(newKey()));
    expect(res.status).toBe(201);
    expect(new X509Certificate(res.json().certificate).subjectAltName).toBe('URI:spiffe://tlsfleet.local/service/ingest');
  });

  it('never writes a token or a CSR into its logs', async () => {
    const token = await env.token('quiet');
    const csr = await makeCsr(newKey());
    await enroll(token, csr);
    await enroll(token.slice(0, -2) + 'xx', csr);
    const logs = env.service.output();
    expect(logs).toContain('certificate issued');
    expect(logs).not.toContain(token);
    expect(logs).not.toContain(token.slice(3, 20));
    expect(logs).not.toContain(csr.split('\n')[1]);
    expect(logs).not.toContain(env.adminToken);
  });
});
