import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProvisioningEnv, type ProvisioningEnv } from './harness/fleet-env.js';
import { postJson, request, type HttpAnswer } from './harness/https-client.js';
import { makeCsr, newKey, type TestKey } from './harness/csr.js';
import { openssl } from './harness/openssl.js';

interface Held {
  key: string;
  chain: string;
  serial: string;
}

// Issue 19 items 4 and 5: only a device's newest live certificate renews, and "fresh key"
// means a different key, not a different encoding of the same one.
describe('renewal lineage', () => {
  let env: ProvisioningEnv;
  beforeAll(async () => {
    env = await startProvisioningEnv();
  });
  afterAll(async () => {
    await env?.stop();
  });

  async function enroll(id: string, key: TestKey = newKey()): Promise<Held> {
    const res = await postJson(`${env.url}/v1/enroll`, { token: await env.token(id, ['--cert-ttl', '1h']), csr: await makeCsr(key) }, { ca: env.ca });
    expect(res.status, res.text()).toBe(201);
    return { key: key.privatePem, chain: res.json().chain, serial: res.json().serial };
  }
  const renew = (held: Held, csr: string) => postJson(`${env.url}/v1/renew`, { csr }, { ca: env.ca, cert: held.chain, key: held.key });
  const heldAfter = (res: HttpAnswer, key: TestKey): Held => ({ key: key.privatePem, chain: res.json().chain, serial: res.json().serial });
  const codeOf = (res: HttpAnswer) => (res.status >= 400 ? `${res.status} ${res.json().error.code}` : String(res.status));

  it('refuses a second renewal of an already renewed certificate with 403 superseded, while its successor renews', async () => {
    const first = await enroll('lineage-1');
    const k1 = newKey();
    const r1 = await renew(first, await makeCsr(k1));
    expect(r1.status).toBe(201);
    const stolen = await renew(first, await makeCsr(newKey()));
    expect(codeOf(stolen)).toBe('403 superseded');
    expect(stolen.json().error.message).toMatch(/already been renewed/);
    const second = heldAfter(r1, k1);
    const k2 = newKey();
    const r2 = await renew(second, await makeCsr(k2));
    expect(r2.status).toBe(201);
    // Once its successor renewed too, the middle certificate is superseded as well.
    expect(codeOf(await renew(second, await makeCsr(newKey())))).toBe('403 superseded');
    expect(codeOf(await renew(first, await makeCsr(newKey())))).toBe('403 superseded');
    const admin = await request(`${env.url}/v1/devices/lineage-1`, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
    expect(admin.json().certificates).toHaveLength(3);
  });

  it('answers the same new certificate again for the same old certificate and the same new key (a lost answer)', async () => {
    const first = await enroll('lineage-replay');
    const k1 = newKey();
    const csr = await makeCsr(k1);
    const a = await renew(first, csr);
    expect(a.status).toBe(201);
    // A new CSR (new signature) for the same key, as a device rebuilding it after a power cut would send.
    const b = await renew(first, await makeCsr(k1));
    expect(b.status).toBe(201);
    expect(b.json().serial).toBe(a.json().serial);
    expect(b.json().certificate).toBe(a.json().certificate);
    // The replay did not move the lineage: the answer it replayed is still the one that renews.
    expect((await renew(heldAfter(a, k1), await makeCsr(newKey()))).status).toBe(201);
  });

  it('lets exactly one of concurrent renewals of one certificate with different keys through; the rest are superseded', async () => {
    const first = await enroll('lineage-race');
    const csrs = await Promise.all(Array.from({ length: 6 }, () => makeCsr(newKey())));
    const answers = await Promise.all(csrs.map((csr) => renew(first, csr)));
    expect(answers.map(codeOf).sort()).toEqual(['201', '403 superseded', '403 superseded', '403 superseded', '403 superseded', '403 superseded']);
    const admin = await request(`${env.url}/v1/devices/lineage-race`, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
    expect(admin.json().certificates).toHaveLength(2);
  });

  it('answers concurrent renewals of one certificate with one new key with one and the same certificate', async () => {
    const first = await enroll('lineage-race-same');
    const k = newKey();
    const csrs = await Promise.all(Array.from({ length: 4 }, () => makeCsr(k)));
    const answers = await Promise.all(csrs.map((csr) => renew(first, csr)));
    expect(answers.map((a) => a.status)).toEqual([201, 201, 201, 201]);
    expect(new Set(answers.map((a) => a.json().serial)).size).toBe(1);
  });

  it('treats a fresh enrollment with a new token as superseding the earlier certificate', async () => {
    const before = await enroll('lineage-reenroll');
    const after = await enroll('lineage-reenroll');
    expect(codeOf(await renew(before, await makeCsr(newKey())))).toBe('403 superseded');
    expect((await renew(after, await makeCsr(newKey()))).status).toBe(201);
  });

  it('applies the same lineage to EST simplereenroll', async () => {
    const first = await enroll('lineage-est');
    expect((await renew(first, await makeCsr(newKey()))).status).toBe(201);
    const der = Buffer.from((await makeCsr(newKey())).replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const est = await request(`${env.url}/.well-known/est/simplereenroll`, {
      method: 'POST',
      ca: env.ca,
      cert: first.chain,
      key: first.key,
      headers: { 'content-type': 'application/pkcs10' },
      body: der.toString('base64'),
    });
    expect(codeOf(est)).toBe('403 superseded');
  });

  it('refuses a renewal CSR carrying the current EC key in compressed form with key_rejected (openssl-made)', async () => {
    const dir = env.dir;
    const keyFile = join(dir, 'compressed-owner.key');
    expect((await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile])).code).toBe(0);
    const keyPem = readFileSync(keyFile, 'utf8');
    const csrFile = join(dir, 'uncompressed.csr');
    expect((await openssl(['req', '-new', '-key', keyFile, '-subj', '/CN=x', '-out', csrFile])).code).toBe(0);
    const res = await postJson(`${env.url}/v1/enroll`, { token: await env.token('lineage-compressed'), csr: readFileSync(csrFile, 'utf8') }, { ca: env.ca });
    expect(res.status, res.text()).toBe(201);
    const held: Held = { key: keyPem, chain: res.json().chain, serial: res.json().serial };

    const compressedKey = join(dir, 'compressed.key');
    expect((await openssl(['ec', '-in', keyFile, '-conv_form', 'compressed', '-out', compressedKey])).code).toBe(0);
    const compressedCsr = join(dir, 'compressed.csr');
    expect((await openssl(['req', '-new', '-key', compressedKey, '-subj', '/CN=x', '-out', compressedCsr])).code).toBe(0);
    // The test is only meaningful if the CSR really carries the 33-byte compressed point.
    const parsed = await openssl(['req', '-in', compressedCsr, '-noout', '-text']);
    expect(parsed.stdout).toMatch(/pub:\s*\n\s*0[23]:/);
    const again = await renew(held, readFileSync(compressedCsr, 'utf8'));
    expect(codeOf(again)).toBe('400 key_rejected');
    // The device still renews with a really fresh key.
    expect((await renew(held, await makeCsr(newKey()))).status).toBe(201);
  });
});
