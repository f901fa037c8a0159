import { createPrivateKey, sign, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { pemToDer } from '@tlsfleet/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProvisioningEnv, type ProvisioningEnv } from './harness/fleet-env.js';
import { startProvisioningProcess, type Service } from './harness/cli.js';
import { postJson, request, type HttpAnswer } from './harness/https-client.js';
import { makeCsr, newKey, type KeyKind, type TestKey } from './harness/csr.js';
import { clientCertificate, expiredDeviceCertificate } from './harness/expired-cert.js';
import { openssl } from './harness/openssl.js';

interface Held {
  id: string;
  key: TestKey;
  certificate: string;
  chain: string;
  serial: string;
  notAfter: number;
}

/** The proof rule (docs/reference/http-api.md): the CSR's DER signed by the old key; SHA-384 for P-384, SHA-256 otherwise. */
function proof(csrPem: string, oldKey: TestKey, digest?: string): string {
  const key = createPrivateKey(oldKey.privatePem);
  const hash = digest ?? (key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'sha384' : 'sha256');
  return sign(hash, pemToDer(csrPem, 'CERTIFICATE REQUEST')!, key).toString('base64');
}

const codeOf = (res: HttpAnswer) => (res.status >= 400 ? `${res.status} ${res.json().error.code}` : String(res.status));

// Issue 23, sleepy devices: POST /v1/renew-expired with --renew-expired-within.
describe('renewal after expiry', () => {
  let env: ProvisioningEnv;
  let strict: Service; // the same data dir, with a 1 s window
  let off: Service; // the same data dir, without the flag
  const held = new Map<string, Held>();

  const renewExpired = (url: string, body: object) => postJson(`${url}/v1/renew-expired`, body, { ca: env.ca });
  const admin = (path: string, method = 'GET') => request(`${env.url}${path}`, { method, ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}`, 'content-type': 'application/json' }, body: method === 'POST' ? '{}' : undefined });
  async function enroll(id: string, kind: KeyKind = 'P-256'): Promise<void> {
    const key = newKey(kind);
    const res = await postJson(`${env.url}/v1/enroll`, { token: await env.token(id, ['--cert-ttl', '1s']), csr: await makeCsr(key) }, { ca: env.ca });
    expect(res.status, res.text()).toBe(201);
    held.set(id, { id, key, certificate: res.json().certificate, chain: res.json().chain, serial: res.json().serial, notAfter: Date.parse(res.json().notAfter) });
  }
  async function body(id: string, newKeyOf: TestKey = newKey(), signer?: TestKey, digest?: string): Promise<{ certificate: string; csr: string; proof: string }> {
    const h = held.get(id)!;
    const csr = await makeCsr(newKeyOf);
    return { certificate: h.certificate, csr, proof: proof(csr, signer ?? h.key, digest) };
  }

  beforeAll(async () => {
    env = await startProvisioningEnv({ serviceArgs: ['--renew-expired-within', '1h'] });
    strict = await startProvisioningProcess(env.dataDir, ['--renew-expired-within', '1s']);
    off = await startProvisioningProcess(env.dataDir);
    for (const id of ['sleepy-ok', 'sleepy-revoked', 'sleepy-proof', 'sleepy-same-key', 'sleepy-window', 'sleepy-off']) await enroll(id);
    await enroll('sleepy-p384', 'P-384');
    await enroll('sleepy-rsa', 'rsa2048');
    // The certificates live one second: wait for the last one's notAfter, plus the strict window.
    const last = Math.max(...[...held.values()].map((h) => h.notAfter));
    await delay(Math.max(0, last + 1100 - Date.now()));
  }, 60_000);
  afterAll(async () => {
    await strict?.stop();
    await off?.stop();
    await env?.stop();
  });

  it('renews an expired current certificate: the answer chains to the CA, the device moves on, and a lost answer is replayed', async () => {
    const k1 = newKey();
    const first = await body('sleepy-ok', k1);
    const res = await renewExpired(env.url, first);
    expect(res.status, res.text()).toBe(201);
    const answer = res.json();
    expect(answer).toMatchObject({ deviceId: 'sleepy-ok', certificate: expect.any(String), chain: expect.any(String), caBundle: expect.any(String), renewAfter: expect.any(String) });
    const leaf = new X509Certificate(answer.certificate);
    expect(leaf.checkPrivateKey(k1.privateKey)).toBe(true);
    expect(Date.parse(answer.notAfter)).toBeGreaterThan(Date.now());
    const dir = env.dir;
    writeFileSync(join(dir, 'renewed.pem'), answer.certificate);
    writeFileSync(join(dir, 'chain.pem'), answer.chain);
    writeFileSync(join(dir, 'bundle.pem'), answer.caBundle);
    const verified = await openssl(['verify', '-CAfile', join(dir, 'bundle.pem'), '-untrusted', join(dir, 'chain.pem'), join(dir, 'renewed.pem')]);
    expect(verified.stdout).toMatch(/renewed\.pem: OK/);

    const device = (await admin('/v1/devices/sleepy-ok')).json();
    expect(device.currentSerial).toBe(answer.serial);
    expect(device.currentSerial).not.toBe(held.get('sleepy-ok')!.serial);

    // The same old certificate and the same new key again (a new CSR): the same certificate.
    const again = await renewExpired(env.url, await body('sleepy-ok', k1));
    expect(again.status).toBe(201);
    expect(again.json().serial).toBe(answer.serial);
    expect(again.json().certificate).toBe(answer.certificate);
    // Any other key: the expired certificate is superseded now.
    expect(codeOf(await renewExpired(env.url, await body('sleepy-ok')))).toBe('403 superseded');

    // Recorded as a renewal: audit action `renew`, caused by the expired certificate.
    const audit = (await admin('/v1/audit?device=sleepy-ok')).json();
    const entry = audit.items.find((e: { serial?: string; action: string }) => e.serial === answer.serial);
    expect(entry).toMatchObject({ action: 'renew', actor: `renewal-after-expiry:${held.get('sleepy-ok')!.serial}` });
    const metrics = (await request(`${env.url}/metrics`, { ca: env.ca })).text();
    expect(metrics).toMatch(/tlsfleet_provisioning_issuance_duration_seconds_count\{operation="renew_expired"\} [1-9]/);
  });

  it('uses SHA-384 for a P-384 key and SHA-256 for RSA (PKCS#1 v1.5), and nothing else', async () => {
    expect(codeOf(await renewExpired(env.url, await body('sleepy-p384', newKey(), undefined, 'sha256')))).toBe('403 forbidden');
    expect(codeOf(await renewExpired(env.url, await body('sleepy-p384')))).toBe('201');
    expect(codeOf(await renewExpired(env.url, await body('sleepy-rsa')))).toBe('201');
  });

  it('refuses a revoked certificate with 403 revoked', async () => {
    const revoked = await admin(`/v1/certificates/${held.get('sleepy-revoked')!.serial}/revoke`, 'POST');
    expect(revoked.status, revoked.text()).toBeLessThan(300);
    expect(codeOf(await renewExpired(env.url, await body('sleepy-revoked')))).toBe('403 revoked');
  });

  it('refuses a proof by another key with 403 forbidden, and a proof that is not base64 with 400', async () => {
    const res = await renewExpired(env.url, await body('sleepy-proof', newKey(), newKey()));
    expect(codeOf(res)).toBe('403 forbidden');
    expect(res.json().error.message).toMatch(/proof/);
    expect(codeOf(await renewExpired(env.url, { ...(await body('sleepy-proof')), proof: 'not base64!' }))).toBe('400 invalid_request');
    // Nothing moved: the right proof still renews.
    expect(codeOf(await renewExpired(env.url, await body('sleepy-proof')))).toBe('201');
  });

  it('refuses a CSR for the old key with 400 key_rejected', async () => {
    const h = held.get('sleepy-same-key')!;
    expect(codeOf(await renewExpired(env.url, await body('sleepy-same-key', h.key)))).toBe('400 key_rejected');
  });

  it('refuses once the window has passed with 403 forbidden', async () => {
    const res = await renewExpired(strict.url, await body('sleepy-window'));
    expect(codeOf(res)).toBe('403 forbidden');
    expect(res.json().error.message).toMatch(/expired at .*longer ago/);
  });

  it('does not exist without --renew-expired-within: 404 not_found', async () => {
    expect(codeOf(await renewExpired(off.url, await body('sleepy-off')))).toBe('404 not_found');
  });

  it('refuses a certificate of another CA with 401, one it never issued with 403, and a live one with 400', async () => {
    const other = await startProvisioningEnv();
    try {
      const foreign = await expiredDeviceCertificate(other.dataDir, 'sleepy-foreign');
      const csr = await makeCsr(newKey());
      expect(codeOf(await renewExpired(env.url, { certificate: foreign, csr, proof: proof(csr, newKey()) }))).toBe('401 unauthorized');
    } finally {
      await other.stop();
    }
    const day = 86_400_000;
    const unknown = await clientCertificate(env.dataDir, { cn: 'sleepy-unknown', uri: 'spiffe://tlsfleet.local/device/sleepy-unknown', notBefore: new Date(Date.now() - 2 * day), notAfter: new Date(Date.now() - 60_000) });
    const csr = await makeCsr(newKey());
    const oldKey: TestKey = { privateKey: createPrivateKey(unknown.keyPem), privatePem: unknown.keyPem };
    expect(codeOf(await renewExpired(env.url, { certificate: unknown.certPem, csr, proof: proof(csr, oldKey) }))).toBe('403 forbidden');

    await enroll('sleepy-live');
    const live = await renewExpired(env.url, await body('sleepy-live'));
    expect(codeOf(live)).toBe('400 invalid_request');
    expect(live.json().error.message).toMatch(/\/v1\/renew/);
    expect(codeOf(await renewExpired(env.url, { csr }))).toBe('400 invalid_request');
  });
});
