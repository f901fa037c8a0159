import { createHash, createPublicKey } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, initDataDir, startProvisioning, type EnrollHookOptions, type RunningProvisioning } from '@tlsfleet/provisioning';
import { makeCsr, newKey, type KeyKind } from './harness/csr.js';
import { postJson, request } from './harness/https-client.js';
import { json, receiverPki, startReceiver, type Answer, type Receiver } from './harness/hook-receiver.js';
import { mustOpenssl } from './harness/openssl-pki.js';
import { tempDir } from './harness/temp-dir.js';
import { startProvisioningEnv } from './harness/fleet-env.js';

describe('provisioning --enroll-hook', () => {
  const tmp = tempDir('tlsfleet-hook-');
  const dataDir = join(tmp.path, 'data');
  let ca: string;
  let n = 0;
  beforeAll(async () => {
    await initDataDir({ dataDir });
    ca = readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8');
  });
  afterAll(() => tmp.cleanup());

  /** A provisioning service in this process on 127.0.0.1:0 with the hook given, and a receiver answering with `answer`. */
  async function withHook<T>(answer: Answer | string, run: (s: { svc: RunningProvisioning; hook: Receiver | undefined; logs: string[] }) => Promise<T>, hookOpts: Partial<EnrollHookOptions> = {}, tls?: { key: string; cert: string }, extra: Parameters<typeof startProvisioning>[0]['gate'] = undefined): Promise<T> {
    const hook = typeof answer === 'string' ? undefined : await startReceiver(answer, tls);
    const logs: string[] = [];
    const logger = createLogger('provisioning', 'info', { write: (line: string) => void logs.push(line) });
    const svc = await startProvisioning({ dataDir, port: 0, logger, enrollHook: { url: hook?.url ?? (answer as string), ...hookOpts }, gate: extra });
    try {
      return await run({ svc, hook, logs });
    } finally {
      await svc.close(0);
      await hook?.close();
    }
  }

  const token = async (svc: RunningProvisioning, device = `dev-${++n}`) => ({ device, token: (await svc.authority.mintToken({ subject: device, createdBy: 'test' })).token });
  const enroll = (svc: RunningProvisioning, token: string, csr: string) => postJson(`${svc.url}/v1/enroll`, { token, csr }, { ca });
  const allow: Answer = (_r, res) => json(res, 200, { allow: true });

  it('asks the hook with exactly four fields, hashing the SPKI as openssl extracts it, and issues on allow', async () => {
    await withHook(allow, async ({ svc, hook, logs }) => {
      const t = await token(svc);
      const csr = await makeCsr(newKey());
      const res = await enroll(svc, t.token, csr);
      expect(res.status).toBe(201);
      expect(res.json().deviceId).toBe(t.device);
      expect(hook!.received).toHaveLength(1);
      const body = JSON.parse(hook!.received[0]!.raw) as Record<string, unknown>;
      expect(Object.keys(body).sort()).toEqual(['address', 'device', 'kind', 'publicKeySha256']);
      writeFileSync(join(tmp.path, 'req.pem'), csr);
      const spkiPem = await mustOpenssl(['req', '-in', join(tmp.path, 'req.pem'), '-pubkey', '-noout']);
      const expected = createHash('sha256').update(createPublicKey(spkiPem).export({ type: 'spki', format: 'der' })).digest('hex');
      expect(body).toEqual({ device: t.device, kind: 'device', publicKeySha256: expected, address: '127.0.0.1' });
      expect(hook!.received[0]!.raw).not.toMatch(/PRIVATE|CERTIFICATE REQUEST|token/i);
      const line = logs.find((l) => l.includes('enroll hook answered'));
      expect(JSON.parse(line!)).toMatchObject({ device: t.device, decision: 'allow', result: 'allowed' });
      expect(typeof JSON.parse(line!).latencyMs).toBe('number');
      expect(line).not.toContain(expected);
      const metrics = (await request(`${svc.url}/metrics`, { ca })).text();
      expect(metrics).toMatch(/tlsfleet_provisioning_enroll_hook_total\{result="allowed"\} 1/);
    });
  });

  it('refuses with 403 forbidden on allow: false and leaves the token spendable', async () => {
    let verdict = false;
    await withHook((_r, res) => json(res, 200, { allow: verdict }), async ({ svc, hook, logs }) => {
      const t = await token(svc);
      const csr = await makeCsr(newKey());
      const no = await enroll(svc, t.token, csr);
      expect(no.status).toBe(403);
      expect(no.json().error.code).toBe('forbidden');
      expect(JSON.parse(logs.find((l) => l.includes('enroll hook answered'))!)).toMatchObject({ decision: 'refuse', result: 'denied' });
      verdict = true;
      const yes = await enroll(svc, t.token, csr);
      expect(yes.status).toBe(201);
      expect(hook!.received).toHaveLength(2);
    });
  });

  it.each<[string, Answer]>([
    ['a non-2xx answer', (_r, res) => json(res, 500, { allow: true })],
    ['a body that is not JSON', (_r, res) => json(res, 200, 'yes please')],
    ['"allow" not exactly true', (_r, res) => json(res, 200, { allow: 'true' })],
    ['an answer over the size bound', (_r, res) => json(res, 200, `${' '.repeat(1 << 20)}{"allow":true}`)],
  ])('refuses on %s, token unspent', async (_what, answer) => {
    await withHook(answer, async ({ svc }) => {
      const t = await token(svc);
      const csr = await makeCsr(newKey());
      const res = await enroll(svc, t.token, csr);
      expect(res.status).toBe(403);
      expect(res.json().error.code).toBe('forbidden');
      expect((await svc.authority.device(t.device).catch((e: { code: string }) => e.code))).toBe('not_found');
    });
  });

  it('refuses when the hook cannot be reached (connection refused)', async () => {
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    await withHook(`http://127.0.0.1:${port}/hook`, async ({ svc, logs }) => {
      const t = await token(svc);
      const res = await enroll(svc, t.token, await makeCsr(newKey()));
      expect(res.status).toBe(403);
      expect(JSON.parse(logs.find((l) => l.includes('enroll hook failed'))!)).toMatchObject({ result: 'connection' });
    });
  });

  it('refuses a hook that never answers after the real 5 s default, and a slow hook holds no renewal place', async () => {
    const pending: (() => void)[] = [];
    await withHook((r, res) => (JSON.parse(r.raw).device.startsWith('slow') ? pending.push(() => res.end()) : json(res, 200, { allow: true })), async ({ svc, hook }) => {
      // A device to renew later, enrolled while the hook answers.
      const key = newKey();
      const d = await token(svc, 'renewer');
      const first = await enroll(svc, d.token, await makeCsr(key));
      expect(first.status).toBe(201);
      const t = await token(svc, 'slow-1');
      const started = Date.now();
      const late = enroll(svc, t.token, await makeCsr(newKey()));
      await hook!.next();
      // The one enrollment place is held by the waiting hook; renewals keep theirs.
      const renewed = await postJson(`${svc.url}/v1/renew`, { csr: await makeCsr(newKey()) }, { ca, cert: first.json().certificate, key: key.privatePem });
      expect(renewed.status).toBe(201);
      const res = await late;
      const took = Date.now() - started;
      expect(res.status).toBe(403);
      expect(res.json().error.code).toBe('forbidden');
      expect(took).toBeGreaterThanOrEqual(4_900);
      expect(took).toBeLessThan(8_000);
      for (const end of pending) end();
    }, {}, undefined, { maxInFlight: 2, renewalReserve: 1 });
  });

  it('never calls the hook for a bad token, a forged CSR signature or a weak key', async () => {
    await withHook(allow, async ({ svc, hook }) => {
      const bad = await enroll(svc, 'not-a-token', await makeCsr(newKey()));
      expect(bad.status).toBe(401);
      const t = await token(svc);
      const der = Buffer.from((await makeCsr(newKey())).replace(/-----[^-]+-----|\s/g, ''), 'base64');
      der.writeUInt8(der.readUInt8(der.length - 1) ^ 0x01, der.length - 1);
      const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
      expect((await enroll(svc, t.token, forged)).json().error.code).toBe('invalid_csr');
      expect((await enroll(svc, t.token, await makeCsr(newKey('rsa1024' as KeyKind)))).json().error.code).toBe('key_rejected');
      expect(hook!.received).toHaveLength(0);
      // The token is still good.
      expect((await enroll(svc, t.token, await makeCsr(newKey()))).status).toBe(201);
    });
  });

  it('fails a short bound quickly (internal option) and counts the timeout', async () => {
    await withHook(() => undefined, async ({ svc }) => {
      const t = await token(svc);
      const res = await enroll(svc, t.token, await makeCsr(newKey()));
      expect(res.status).toBe(403);
      expect((await request(`${svc.url}/metrics`, { ca })).text()).toMatch(/tlsfleet_provisioning_enroll_hook_total\{result="timeout"\} 1/);
    }, { timeoutMs: 200 });
  });

  it('verifies an https hook against --hook-ca: refused without it, allowed with it', async () => {
    const pki = await receiverPki(tmp.path);
    await withHook(allow, async ({ svc, hook, logs }) => {
      const t = await token(svc);
      const res = await enroll(svc, t.token, await makeCsr(newKey()));
      expect(res.status).toBe(403);
      expect(hook!.received).toHaveLength(0);
      expect(JSON.parse(logs.find((l) => l.includes('enroll hook failed'))!)).toMatchObject({ result: 'connection' });
    }, {}, pki);
    await withHook(allow, async ({ svc, hook }) => {
      const t = await token(svc);
      expect((await enroll(svc, t.token, await makeCsr(newKey()))).status).toBe(201);
      expect(hook!.received).toHaveLength(1);
    }, { ca: pki.caPem }, pki);
  });

  it('asks before EST simpleenroll too: a no is 403 and the token still works', async () => {
    let verdict = false;
    await withHook((_r, res) => json(res, 200, { allow: verdict }), async ({ svc, hook }) => {
      const t = await token(svc);
      const der = Buffer.from((await makeCsr(newKey())).replace(/-----[^-]+-----|\s/g, ''), 'base64');
      const est = () => request(`${svc.url}/.well-known/est/simpleenroll`, { ca, method: 'POST', body: der.toString('base64'), headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/pkcs10' } });
      const no = await est();
      expect(no.status).toBe(403);
      verdict = true;
      expect((await est()).status).toBe(200);
      expect(hook!.received.map((r) => JSON.parse(r.raw).device)).toEqual([t.device, t.device]);
    });
  });

  it('is wired from the command line: tlsfleet provisioning --enroll-hook', async () => {
    const hook = await startReceiver((r, res) => json(res, 200, { allow: JSON.parse(r.raw).device === 'cli-yes' }));
    const env = await startProvisioningEnv({ serviceArgs: ['--enroll-hook', hook.url] });
    try {
      const yes = await postJson(`${env.url}/v1/enroll`, { token: await env.token('cli-yes'), csr: await makeCsr(newKey()) }, { ca: env.ca });
      expect(yes.status).toBe(201);
      const no = await postJson(`${env.url}/v1/enroll`, { token: await env.token('cli-no'), csr: await makeCsr(newKey()) }, { ca: env.ca });
      expect(no.status).toBe(403);
      expect(no.json().error.code).toBe('forbidden');
      expect(hook.received).toHaveLength(2);
    } finally {
      await env.stop();
      await hook.close();
    }
  });

  it('refuses plain http to a non-loopback host at start', async () => {
    await expect(startProvisioning({ dataDir, port: 0, enrollHook: { url: 'http://192.0.2.1/hook' } })).rejects.toThrow(/loopback/);
  });
});
