import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startProvisioningProcess } from './harness/cli.js';
import { startProvisioningEnv, type ProvisioningEnv } from './harness/fleet-env.js';
import { postJson, request, type HttpAnswer } from './harness/https-client.js';
import { makeCsr, newKey } from './harness/csr.js';
import { pollUntil } from './harness/poll.js';
import { tempDir } from './harness/temp-dir.js';
import { clientCertificate } from './harness/expired-cert.js';

interface Held {
  key: string;
  chain: string;
  notAfter: string;
}

/** One HTTP/1.1 request (POST with `body`, else GET) over one TLS 1.2 connection, resuming `session` when given. */
async function tls12Request(
  url: string,
  creds: { ca: string; cert: string; key: string },
  path: string,
  body: string | undefined,
  session?: Buffer,
): Promise<{ status: number; json: any; reused: boolean; session: Buffer | undefined }> {
  const { port } = new URL(url);
  const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), servername: 'localhost', maxVersion: 'TLSv1.2', ...creds, ...(session ? { session } : {}) });
  let saved: Buffer | undefined;
  socket.on('session', (s: Buffer) => (saved = s));
  await once(socket, 'secureConnect');
  const reused = socket.isSessionReused();
  const head = body === undefined ? `GET ${path} HTTP/1.1\r\n` : `POST ${path} HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
  socket.end(`${head}host: localhost\r\nconnection: close\r\n\r\n${body ?? ''}`);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'close');
  const text = Buffer.concat(chunks).toString('utf8');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
  const raw = text.slice(text.indexOf('\r\n\r\n') + 4);
  return { status, json: raw.startsWith('{') ? JSON.parse(raw) : raw, reused, session: saved };
}

const codeOf = (res: HttpAnswer) => (res.status >= 400 ? `${res.status} ${res.json().error.code}` : String(res.status));

describe('certificate lifecycle side doors', () => {
  let env: ProvisioningEnv;
  beforeAll(async () => {
    env = await startProvisioningEnv();
  });
  afterAll(async () => {
    await env?.stop();
  });

  async function enroll(id: string, token?: string, certTtl = '1h'): Promise<Held> {
    const key = newKey();
    const res = await postJson(`${env.url}/v1/enroll`, { token: token ?? (await env.token(id, ['--cert-ttl', certTtl])), csr: await makeCsr(key) }, { ca: env.ca });
    expect(res.status, res.text()).toBe(201);
    return { key: key.privatePem, chain: res.json().chain, notAfter: res.json().notAfter };
  }
  const admin = () => ({ authorization: `Bearer ${env.adminToken}` });
  /** Until `atMs` has passed, by the service's answers to /healthz on one kept-alive connection (each a real request). */
  async function untilPast(atMs: number): Promise<void> {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await pollUntil(`the clock to pass ${new Date(atMs).toISOString()}`, () => request(`${env.url}/healthz`, { ca: env.ca, agent }), () => Date.now() >= atMs, 20_000);
    } finally {
      agent.destroy();
    }
  }
  const enrollWith = async (token: string) => postJson(`${env.url}/v1/enroll`, { token, csr: await makeCsr(newKey()) }, { ca: env.ca });

  it('never renews an expired certificate, over a resumed TLS 1.2 session or a fresh handshake (401 unauthorized)', async () => {
    const held = await enroll('expiring-1', undefined, '5s');
    const creds = { ca: env.ca, cert: held.chain, key: held.key };
    // A first, full handshake while the certificate is valid; its session is kept.
    const first = await tls12Request(env.url, creds, '/v1/renew', JSON.stringify({ csr: 'not a csr' }));
    expect(first.reused).toBe(false);
    expect(first.status).toBe(400);
    expect(first.session).toBeDefined();
    // Until the certificate has expired, by the service's answers (each a real request).
    const expiredAt = Date.parse(held.notAfter) + 1000;
    await untilPast(expiredAt);
    const resumed = await tls12Request(env.url, creds, '/v1/renew', JSON.stringify({ csr: await makeCsr(newKey()) }), first.session);
    expect(resumed.reused).toBe(true);
    expect(resumed.status).toBe(401);
    expect(resumed.json.error.code).toBe('unauthorized');
    expect(resumed.json.error.message).toMatch(/expired/);
    const fresh = await postJson(`${env.url}/v1/renew`, { csr: await makeCsr(newKey()) }, creds);
    expect(codeOf(fresh)).toBe('401 unauthorized');
    const certs = (await request(`${env.url}/v1/devices/expiring-1`, { ca: env.ca, headers: admin() })).json().certificates;
    expect(certs).toHaveLength(1);
  });

  it('refuses an admin certificate past its notAfter on a resumed TLS 1.2 session (401 unauthorized)', async () => {
    const now = Date.now();
    const admin = await clientCertificate(env.dataDir, { cn: 'short-admin', uri: 'spiffe://tlsfleet.local/admin/short-admin', notBefore: new Date(now - 60_000), notAfter: new Date(now + 5000) });
    const creds = { ca: env.ca, cert: admin.certPem, key: admin.keyPem };
    const first = await tls12Request(env.url, creds, '/v1/devices', undefined);
    expect(first.status).toBe(200);
    const expiredAt = Math.floor((now + 5000) / 1000) * 1000 + 1000;
    await untilPast(expiredAt);
    const resumed = await tls12Request(env.url, creds, '/v1/devices', undefined, first.session);
    expect(resumed.reused).toBe(true);
    expect(resumed.status).toBe(401);
    expect(resumed.json.error.code).toBe('unauthorized');
  });

  it('cancels every outstanding token of a device revoked through the API; a token minted afterwards re-admits it', async () => {
    await enroll('revoked-api');
    const before = await env.token('revoked-api');
    const revoked = await postJson(`${env.url}/v1/devices/revoked-api/revoke`, {}, { ca: env.ca, headers: admin() });
    expect(revoked.status).toBe(200);
    const stale = await enrollWith(before);
    expect(codeOf(stale)).toBe('401 invalid_token');
    expect(stale.json().error.message).toMatch(/cancelled when revoked-api was revoked/);
    const after = await env.token('revoked-api');
    expect((await enrollWith(after)).status).toBe(201);
  });

  it('cancels the outstanding tokens of a device revoked offline with `tlsfleet revoke --data-dir`', async () => {
    await enroll('revoked-cli');
    const before = await env.token('revoked-cli');
    const r = await runCli(['revoke', '--data-dir', env.dataDir, '--device', 'revoked-cli']);
    expect(r.code, r.stderr).toBe(0);
    expect(codeOf(await enrollWith(before))).toBe('401 invalid_token');
    expect((await enrollWith(await env.token('revoked-cli'))).status).toBe(201);
  });

  it('enrolls with `device enroll --token-file`, trimming the file, and wants exactly one of --token and --token-file', async () => {
    const tokenFile = join(env.dir, 'token-file-1.txt');
    writeFileSync(tokenFile, `  ${await env.token('token-file-1')}\n`, { mode: 0o600 });
    const base = ['--provisioning', env.url, '--bootstrap-ca', join(env.dataDir, 'ca-bundle.pem')];
    const ok = await runCli(['device', 'enroll', '--token-file', tokenFile, '--state', join(env.dir, 'state-tf-1'), ...base]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('"event":"enrolled"');
    const both = await runCli(['device', 'enroll', '--token', 'tf_x', '--token-file', tokenFile, '--state', join(env.dir, 'state-tf-2'), ...base]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/exactly one of --token and --token-file/);
    expect(both.stderr).toContain('--token-file FILE');
    const help = await runCli(['device', 'enroll', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--token-file FILE');
    const neither = await runCli(['device', 'enroll', '--state', join(env.dir, 'state-tf-3'), ...base]);
    expect(neither.code).toBe(2);
    const missing = await runCli(['device', 'enroll', '--token-file', join(env.dir, 'nope.txt'), '--state', join(env.dir, 'state-tf-4'), ...base]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.txt/);
  });
});

describe('the data dir database', () => {
  it('is created 0600, with its -wal and -shm files, when init runs in an existing 0755 folder', async () => {
    const tmp = tempDir('tlsfleet-db-mode-');
    const dataDir = join(tmp.path, 'existing');
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o755);
    try {
      const init = await runCli(['init', '--data-dir', dataDir]);
      expect(init.code, init.stderr).toBe(0);
      const service = await startProvisioningProcess(dataDir);
      try {
        const token = await runCli(['token', '--data-dir', dataDir, '--device', 'mode-1']);
        expect(token.code, token.stderr).toBe(0);
        for (const f of ['tlsfleet.db', 'tlsfleet.db-wal', 'tlsfleet.db-shm']) {
          expect({ f, mode: (statSync(join(dataDir, f)).mode & 0o777).toString(8) }).toEqual({ f, mode: '600' });
        }
      } finally {
        await service.stop();
      }
    } finally {
      tmp.cleanup();
    }
  });
});
