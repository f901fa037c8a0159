import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATA_FILES, pemBlocks } from '@tlsfleet/common';
import { startProvisioningEnv, type ProvisioningEnv } from './harness/fleet-env.js';
import { postJson, request, type HttpAnswer } from './harness/https-client.js';
import { makeCsr, newKey } from './harness/csr.js';
import { runCli } from './harness/cli.js';
import { openssl } from './harness/openssl.js';
import { certText } from './harness/openssl-pki.js';
import { runAndStopWhenReady } from './harness/service-outcome.js';
import { startPartialUpload } from './harness/partial-upload.js';
import { pollUntil } from './harness/poll.js';
import { tempDir } from './harness/temp-dir.js';
import { sample } from './harness/broker-probe.js';
import { createServer as createNetServer } from 'node:net';
import { once } from 'node:events';

/** docs/reference/files.md's data-dir table: file → who makes it and its mode. */
const DATA_DIR_TABLE = dataDirTable(readFileSync(new URL('../docs/reference/files.md', import.meta.url), 'utf8'));
/** Files `init` leaves in the data dir: the rows of that table made by `init`. */
const INIT_FILES = [...DATA_DIR_TABLE].filter(([, row]) => row.madeBy === 'init').map(([file]) => file);
const SECRETS = INIT_FILES.filter((f) => DATA_DIR_TABLE.get(f)!.mode === 0o600);
/** Certificate file → its key file. */
const PAIRS: Array<[string, string]> = [
  ['root-ca.pem', 'root-ca.key'],
  ['intermediate-ca.pem', 'intermediate-ca.key'],
  ['provisioning.pem', 'provisioning.key'],
  ['broker.pem', 'broker.key'],
  ['admin.pem', 'admin.key'],
];

const mode = (file: string) => statSync(file).mode & 0o777;

/** The `| file | made by | what | mode |` table under "## Data dir": one file name in backticks per row. */
function dataDirTable(doc: string): Map<string, { madeBy: string; mode: number }> {
  const section = doc.slice(doc.indexOf('## Data dir'));
  const lines = section.split('\n');
  const header = lines.findIndex((l) => l === '| file | made by | what | mode |');
  if (header === -1) throw new Error('docs/reference/files.md has no data-dir table');
  const table = new Map<string, { madeBy: string; mode: number }>();
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line.slice(1, -1).split(' | ').map((c) => c.trim());
    const file = /^`([^`]+)`$/.exec(cells[0]!)?.[1];
    const fileMode = /^0[0-7]{3}$/.exec(cells.at(-1)!)?.[0];
    if (file === undefined || fileMode === undefined) throw new Error(`docs/reference/files.md: a data-dir row needs one file name and a mode: ${line}`);
    table.set(file, { madeBy: cells[1]!.replace(/`/g, ''), mode: parseInt(fileMode, 8) });
  }
  return table;
}

/** Every file of a directory with its bytes and mode, to compare before and after. */
function snapshot(dir: string): Record<string, { mode: number; bytes: string }> {
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, { mode: mode(join(dir, f)), bytes: readFileSync(join(dir, f)).toString('base64') }]));
}

function expectError(res: HttpAnswer, status: number, code: string): void {
  expect(res.status, res.text()).toBe(status);
  expect(res.json().error.code).toBe(code);
}

/** A token minted online by the admin (cheaper than a CLI process per token). */
async function mintToken(env: ProvisioningEnv, deviceId: string): Promise<string> {
  const res = await postJson(`${env.url}/v1/tokens`, { deviceId }, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
  expect(res.status, res.text()).toBe(201);
  return res.json().token;
}

describe('service operations', () => {
  // One data dir made by `init` with every option, read by the init and usage tests.
  let tmp: ReturnType<typeof tempDir>;
  let dir: string;
  beforeAll(async () => {
    tmp = tempDir('tlsfleet-ops-');
    dir = join(tmp.path, 'data');
    const r = await runCli(['init', '--data-dir', dir, '--trust-domain', 'fleet.example.com', '--server-name', 'example.internal', '--server-name', '10.1.2.3']);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(() => tmp?.cleanup());

  describe('tlsfleet init', () => {
    it('lists every data-dir file name of the code in the data-dir table of docs/reference/files.md, and no other', () => {
      expect([...DATA_DIR_TABLE.keys()].sort()).toEqual(Object.values(DATA_FILES).sort());
    });

    it('writes exactly the files the data-dir table says init makes, with its modes, each key matching its certificate', () => {
      expect(readdirSync(dir).sort()).toEqual([...INIT_FILES].sort());
      for (const f of INIT_FILES) {
        const documented = DATA_DIR_TABLE.get(f)!.mode;
        // A stricter umask may only take permissions away; a secret is exactly 0600.
        expect(mode(join(dir, f)) & ~documented, `${f} is ${mode(join(dir, f)).toString(8)}, documented ${documented.toString(8)}`).toBe(0);
        if (documented === 0o600) expect(mode(join(dir, f)), f).toBe(0o600);
      }
      expect(INIT_FILES).toEqual(expect.arrayContaining(['ca-bundle.pem', 'admin.token']));
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      expect(config).toMatchObject({ version: 1, trustDomain: 'fleet.example.com' });
      const adminToken = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
      expect(adminToken).toMatch(/^\S{22,}$/); // at least 128 bits in base64url
      for (const [cert, key] of PAIRS) {
        const x = new X509Certificate(readFileSync(join(dir, cert)));
        expect(x.checkPrivateKey(createPrivateKey(readFileSync(join(dir, key)))), `${key} belongs to ${cert}`).toBe(true);
      }
      // ca-bundle.pem: root, then intermediate.
      const bundle = pemBlocks(readFileSync(join(dir, 'ca-bundle.pem'), 'utf8')).map((b) => new X509Certificate(b.der).fingerprint256);
      expect(bundle).toEqual([
        new X509Certificate(readFileSync(join(dir, 'root-ca.pem'))).fingerprint256,
        new X509Certificate(readFileSync(join(dir, 'intermediate-ca.pem'))).fingerprint256,
      ]);
    });

    it('gives every key file and the admin token mode 0600', () => {
      expect(SECRETS.length).toBeGreaterThanOrEqual(6);
      for (const f of SECRETS) expect(mode(join(dir, f)).toString(8), f).toBe('600');
      // The public files are readable by the services of other users; never writable by them.
      for (const f of ['ca-bundle.pem', 'root-ca.pem', 'intermediate-ca.pem', 'config.json']) expect(mode(join(dir, f)) & 0o022, f).toBe(0);
    });

    it('refuses a non-empty data dir with exit status 1 and leaves every file byte for byte as it was', async () => {
      const before = snapshot(dir);
      const r = await runCli(['init', '--data-dir', dir]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/not empty/);
      expect(r.stderr).toContain(dir);
      expect(snapshot(dir)).toEqual(before);
    });

    it('refuses a directory holding one unrelated file and writes nothing beside it', async () => {
      const lone = join(tmp.path, 'lone');
      mkdirSync(lone);
      writeFileSync(join(lone, 'notes.txt'), 'keep me\n');
      const before = snapshot(lone);
      const r = await runCli(['init', '--data-dir', lone]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/not empty/);
      expect(snapshot(lone)).toEqual(before);
    });

    it('puts --trust-domain in the URI SAN of the admin certificate', async () => {
      const text = await certText(join(dir, 'admin.pem'));
      expect(/X509v3 Subject Alternative Name:\s*\n\s*(.*)\n/.exec(text)?.[1]).toBe('URI:spiffe://fleet.example.com/admin/operator');
      expect(text).toMatch(/TLS Web Client Authentication/);
    });

    it.each(['provisioning.pem', 'broker.pem'])('makes %s valid for localhost, 127.0.0.1, ::1 and every --server-name, as openssl verifies for sslserver', async (file) => {
      const text = await certText(join(dir, file));
      const san = /X509v3 Subject Alternative Name:\s*\n\s*(.*)\n/.exec(text)?.[1] ?? '';
      const names = san.split(', ');
      expect(names).toEqual(
        expect.arrayContaining(['DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1', 'DNS:example.internal', 'IP Address:10.1.2.3']),
      );
      const verify = (extra: string[]) => openssl(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca-bundle.pem'), ...extra, join(dir, file)]);
      for (const extra of [[], ['-verify_hostname', 'example.internal'], ['-verify_ip', '10.1.2.3'], ['-verify_hostname', 'localhost']]) {
        const ok = await verify(extra);
        expect(ok.stdout + ok.stderr, extra.join(' ')).toContain(': OK');
        expect(ok.code).toBe(0);
      }
      // The name check is real: a name that was not asked for does not verify.
      expect((await verify(['-verify_hostname', 'not-listed.example'])).code).not.toBe(0);
      // A server certificate is not a client certificate.
      expect((await openssl(['verify', '-purpose', 'sslclient', '-CAfile', join(dir, 'ca-bundle.pem'), join(dir, file)])).code).not.toBe(0);
    });

    it('makes an intermediate that verifies against the root alone, with pathlen 0', async () => {
      const v = await openssl(['verify', '-x509_strict', '-CAfile', join(dir, 'root-ca.pem'), join(dir, 'intermediate-ca.pem')]);
      expect(v.stdout + v.stderr).toContain(': OK');
      expect(v.code).toBe(0);
      expect(await certText(join(dir, 'intermediate-ca.pem'))).toMatch(/CA:TRUE, pathlen:0/);
      const root = await certText(join(dir, 'root-ca.pem'));
      expect(root).toMatch(/ASN1 OID: secp384r1/);
      // The root does not verify against the intermediate: the hierarchy is not upside down.
      expect((await openssl(['verify', '-CAfile', join(dir, 'intermediate-ca.pem'), join(dir, 'root-ca.pem')])).code).not.toBe(0);
    });

    it.concurrent.each([
      ['--trust-domain', 'UPPER/x'],
      ['--server-name', 'bad name!'],
    ])('refuses %s %j with a message naming it, and creates nothing', async (flag, value) => {
      const target = join(tmp.path, `refused-${Math.random().toString(36).slice(2)}`);
      const r = await runCli(['init', '--data-dir', target, `${flag}=${value}`]);
      expect([1, 2]).toContain(r.code);
      expect(r.stderr).toContain(flag);
      expect(r.stderr).toContain(value);
      expect(existsSync(target) ? readdirSync(target) : []).toEqual([]);
    });
  });

  describe.concurrent('command-line usage', () => {
    it.each<[string, (dataDir: string) => string[], RegExp]>([
      ['an unknown command', () => ['frobnicate'], /unknown command "frobnicate"/],
      ['token without --device or --service', (d) => ['token', '--data-dir', d], /--device|--service/],
      ['token with --ttl 5x', (d) => ['token', '--data-dir', d, '--device', 'a', '--ttl', '5x'], /--ttl/],
      ['an unknown flag', (d) => ['token', '--data-dir', d, '--device', 'a', '--bogus'], /bogus/],
      ['ca without a subcommand', () => ['ca'], /request, sign, install, retire/],
      ['ca sign without --out', (d) => ['ca', 'sign', '--csr', join(d, 'none.csr')], /--out is required/],
      ['ca install with a missing certificate file', (d) => ['ca', 'install', '--data-dir', d, '--cert', join(d, 'none.pem')], /--cert .*no such file/],
      ['ca new-root without --out', () => ['ca', 'new-root'], /--out is required/],
      ['ca new-root with --lifetime 200y', () => ['ca', 'new-root', '--lifetime', '200y'], /--lifetime: at most 100y/],
      ['ca trust-root with a missing certificate file', (d) => ['ca', 'trust-root', '--data-dir', d, '--cert', join(d, 'none.pem')], /--cert .*no such file/],
      ['ca untrust-root without --cert', (d) => ['ca', 'untrust-root', '--data-dir', d], /--cert is required/],
    ])('exits 2 with a usage message for %s, printing no token', async (_what, args, message) => {
      const r = await runCli(args(dir));
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr + r.stdout).toMatch(message);
      expect(r.stdout).not.toMatch(/^tf_/m);
    });

    it('refuses ca install and ca retire on a data dir with nothing pending, with a stable code and no stack trace', async () => {
      const install = await runCli(['ca', 'install', '--data-dir', dir, '--cert', join(dir, 'intermediate-ca.pem')]);
      expect(install.code).toBe(1);
      expect(install.stderr).toMatch(/run `tlsfleet ca request` first \(no_pending_key\)/);
      const retire = await runCli(['ca', 'retire', '--data-dir', dir]);
      expect(retire.code).toBe(1);
      expect(retire.stderr).toMatch(/\(no_previous\)/);
      expect(install.stderr + retire.stderr).not.toMatch(/\n\s+at /);
    });

    it('says which address is taken, without a stack trace, when a port is already in use', async () => {
      const blocker = createNetServer();
      blocker.listen(0, '127.0.0.1');
      await once(blocker, 'listening');
      const taken = (blocker.address() as { port: number }).port;
      try {
        const r = await runCli(['provisioning', '--data-dir', dir, '--host', '127.0.0.1', '--port', String(taken)]);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`cannot listen on 127.0.0.1:${taken}: the address is already in use`);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      } finally {
        blocker.close();
      }
    });

    it.each([['--port http'], ['--max-inflight 0']])('refuses to start provisioning with %s, exiting 2', async (flags) => {
      const r = await runAndStopWhenReady(['provisioning', '--data-dir', dir, '--host', '127.0.0.1', '--port', '0', ...flags.split(' ')], /"msg":"provisioning listening"/);
      expect(r.becameReady).toBe(false);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(flags.split(' ')[0]);
    });
  });

  describe('key file permissions, start and stop', () => {
    let dataDir: string;
    beforeAll(async () => {
      dataDir = join(tmp.path, 'modes');
      expect((await runCli(['init', '--data-dir', dataDir])).code).toBe(0);
    });
    const start = () => runAndStopWhenReady(['provisioning', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0'], /"msg":"provisioning listening"/);

    it.each([
      ['intermediate-ca.key', '0644'],
      ['admin.token', '0640'],
    ])('refuses to start while %s has mode %s, naming the file', async (file, badMode) => {
      const path = join(dataDir, file);
      chmodSync(path, parseInt(badMode, 8));
      try {
        const r = await start();
        expect(r.becameReady).toBe(false);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(path);
        expect(r.stderr).toMatch(/readable by group or others|chmod/);
      } finally {
        chmodSync(path, 0o600);
      }
    });

    it('starts once the modes are 0600 again (the refusals were about the modes)', async () => {
      const r = await start();
      expect(r.stderr).toBe('');
      expect(r.becameReady).toBe(true);
    });

    it('exits 0 on a SIGTERM sent the moment it reports ready, every time', async () => {
      // A supervisor may stop a service as soon as it is up: the signal handlers must be in
      // place before the ready line, or the default action kills the process mid-start.
      // Several rounds, because a late handler loses the race only most of the time.
      const outcomes: Array<{ becameReady: boolean; code: number | null; signal: string | null }> = [];
      for (let i = 0; i < 4; i++) {
        const { becameReady, code, signal } = await start();
        outcomes.push({ becameReady, code, signal });
      }
      expect(outcomes).toEqual(Array.from({ length: 4 }, () => ({ becameReady: true, code: 0, signal: null })));
    });
  });

  describe('overload: a slow upload holds no issuance capacity', () => {
    let env: ProvisioningEnv;
    beforeAll(async () => {
      env = await startProvisioningEnv({ serviceArgs: ['--max-inflight', '1', '--client-rate', '0', '--body-timeout', '2s'] });
    });
    afterAll(async () => {
      await env?.stop();
    });
    const metrics = async () => (await request(`${env.url}/metrics`, { ca: env.ca })).text();

    it('serves enrollments while a slow upload waits for its body outside the only slot, then answers the upload 408 request_timeout and closes it', async () => {
      // Issue 19 item 1. The 503 `overloaded` bound itself (and its Retry-After) is
      // provisioning/src/api/issuance-gate.test.ts's: an admitted issuance lasts milliseconds.
      const slowToken = await mintToken(env, 'slow-uploader');
      const waitingToken = await mintToken(env, 'waiting');
      const enrollBody = Buffer.from(JSON.stringify({ token: slowToken, csr: await makeCsr(newKey()) }).padEnd(1000, ' '));
      expect(enrollBody.length).toBe(1000);
      const slow = await startPartialUpload(env.url, { ca: env.ca, path: '/v1/enroll', body: enrollBody, sentBytes: 40 });
      try {
        await pollUntil('the slow upload to be read', metrics, (t) => sample(t, 'tlsfleet_provisioning_issuance_bodies_reading') === 1);
        expect(sample(await metrics(), 'tlsfleet_provisioning_issuance_in_flight')).toBe(0);
        const ok = await postJson(`${env.url}/v1/enroll`, { token: waitingToken, csr: await makeCsr(newKey()) }, { ca: env.ca });
        expect(ok.status, ok.text()).toBe(201);
        const estAuthorization = `Bearer ${await mintToken(env, 'est-while-slow')}`;
        const est = await request(`${env.url}/.well-known/est/simpleenroll`, { ca: env.ca, method: 'POST', headers: { 'content-type': 'application/pkcs10', authorization: estAuthorization }, body: await makeCsr(newKey()) });
        expect(est.status, est.text()).toBe(200);
        for (const path of ['/healthz', '/readyz', '/v1/ca']) expect((await request(`${env.url}${path}`, { ca: env.ca })).status, path).toBe(200);
        expect(sample(await metrics(), 'tlsfleet_provisioning_issuance_shed_total', { reason: 'overloaded' })).toBe(0);
        const [answer] = await slow.closed();
        expect(answer?.status, answer?.body).toBe(408);
        expect(JSON.parse(answer!.body).error.code).toBe('request_timeout');
        expect(answer!.headers.connection).toBe('close');
      } finally {
        slow.destroy();
      }
      expect(sample(await metrics(), 'tlsfleet_provisioning_connection_timeouts_total', { phase: 'body' })).toBe(1);
      // The timed-out upload spent nothing.
      const slowOk = await postJson(`${env.url}/v1/enroll`, { token: slowToken, csr: await makeCsr(newKey()) }, { ca: env.ca });
      expect(slowOk.status, slowOk.text()).toBe(201);
    });
  });

  describe('per-client rate limit', () => {
    let env: ProvisioningEnv;
    beforeAll(async () => {
      env = await startProvisioningEnv({ serviceArgs: ['--client-rate', '1', '--client-burst', '2'] });
    });
    afterAll(async () => {
      await env?.stop();
    });

    it('answers 429 rate_limited with Retry-After to the third of three rapid enrollments, which creates nothing', async () => {
      const ids = ['rate-a', 'rate-b', 'rate-c'];
      const tokens = await Promise.all(ids.map((id) => mintToken(env, id)));
      const csrs = await Promise.all(ids.map(() => makeCsr(newKey())));
      const answers = await Promise.all(tokens.map((token, i) => postJson(`${env.url}/v1/enroll`, { token, csr: csrs[i] }, { ca: env.ca })));
      expect(answers.map((a) => a.status).sort()).toEqual([201, 201, 429]);
      const limited = answers.find((a) => a.status === 429)!;
      expect(limited.json().error.code).toBe('rate_limited');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      const devices = await request(`${env.url}/v1/devices`, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
      expect(devices.json().devices).toHaveLength(2);
      const text = (await request(`${env.url}/metrics`, { ca: env.ca })).text();
      expect(sample(text, 'tlsfleet_provisioning_issuance_shed_total', { reason: 'rate_limited' })).toBe(1);
    });
  });

  describe('health, readiness, metrics, TLS versions and draining', () => {
    let env: ProvisioningEnv;
    beforeAll(async () => {
      env = await startProvisioningEnv();
    });
    afterAll(async () => {
      await env?.stop();
    });
    const metrics = async () => {
      const res = await request(`${env.url}/metrics`, { ca: env.ca });
      expect(res.status).toBe(200);
      expect(String(res.headers['content-type'])).toMatch(/^text\/plain/);
      return res.text();
    };

    it('answers 200 on /healthz and /readyz', async () => {
      for (const path of ['/healthz', '/readyz']) {
        const res = await request(`${env.url}${path}`, { ca: env.ca });
        expect(res.status, path).toBe(200);
      }
    });

    it('counts issued enrollments, spent tokens, issuance time and revocations in /metrics', async () => {
      const before = await metrics();
      const token = await mintToken(env, 'metered');
      const ok = await postJson(`${env.url}/v1/enroll`, { token, csr: await makeCsr(newKey()) }, { ca: env.ca });
      expect(ok.status).toBe(201);
      const reused = await postJson(`${env.url}/v1/enroll`, { token, csr: await makeCsr(newKey()) }, { ca: env.ca });
      expect(reused.status).toBe(409);
      const revoked = await postJson(`${env.url}/v1/devices/metered/revoke`, {}, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
      expect(revoked.status).toBe(200);
      const after = await metrics();
      const delta = (name: string, labels: Record<string, string> = {}) => sample(after, name, labels) - sample(before, name, labels);
      expect(delta('tlsfleet_provisioning_enrollments_total', { result: 'issued' })).toBe(1);
      expect(delta('tlsfleet_provisioning_enrollments_total', { result: 'token_used' })).toBe(1);
      expect(delta('tlsfleet_provisioning_token_failures_total', { code: 'token_used' })).toBe(1);
      expect(delta('tlsfleet_provisioning_revocations_total')).toBe(1);
      expect(delta('tlsfleet_provisioning_issuance_duration_seconds_count', { operation: 'enroll' })).toBeGreaterThanOrEqual(1);
      expect(sample(after, 'tlsfleet_provisioning_issuance_duration_seconds_bucket', { operation: 'enroll', le: '+Inf' })).toBe(sample(after, 'tlsfleet_provisioning_issuance_duration_seconds_count', { operation: 'enroll' }));
      expect(sample(after, 'tlsfleet_provisioning_issuance_duration_seconds_sum', { operation: 'enroll' })).toBeGreaterThan(0);
      expect(after).toMatch(/^# TYPE tlsfleet_provisioning_issuance_duration_seconds histogram$/m);
      expect(after).toMatch(/^# TYPE tlsfleet_provisioning_issuance_in_flight gauge$/m);
      expect(after).toMatch(/^process_cpu_user_seconds_total /m);
      expect(after).not.toContain(token);
    });

    it('refuses a TLS 1.1 client with a protocol_version alert', async () => {
      const port = new URL(env.url).port;
      // SECLEVEL=0 lets OpenSSL 3 offer TLS 1.1 at all, so the refusal is the server's.
      const r = await openssl(['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0', '-CAfile', join(env.dataDir, 'ca-bundle.pem')], '');
      expect(r.code).not.toBe(0);
      // The server answered the TLS 1.1 ClientHello with alert 70 and no cipher was agreed.
      expect(r.stdout + r.stderr).toMatch(/tlsv1 alert protocol version/);
      expect(r.stdout).toMatch(/Cipher is \(NONE\)/);
    });

    it.each([
      ['TLS 1.2', '-tls1_2', 'TLSv1.2'],
      ['TLS 1.3', '-tls1_3', 'TLSv1.3'],
    ])('accepts a %s client and presents a certificate that verifies for localhost', async (_name, flag, protocol) => {
      const port = new URL(env.url).port;
      const r = await openssl(
        ['s_client', '-connect', `127.0.0.1:${port}`, flag, '-brief', '-verify_return_error', '-verify_hostname', 'localhost', '-CAfile', join(env.dataDir, 'ca-bundle.pem')],
        '',
      );
      const out = r.stdout + r.stderr;
      expect(out).toContain(`Protocol version: ${protocol}`);
      expect(out).toMatch(/Verification: OK/);
      expect(r.code).toBe(0);
    });

    it('drains on SIGTERM: new connections are turned away, the upload in flight completes with a certificate, /readyz pipelined behind it says draining, and the process exits 0', async () => {
      // Last in this block: it stops the service the others used.
      const metrics = async () => (await request(`${env.url}/metrics`, { ca: env.ca })).text();
      const token = await mintToken(env, 'drainer');
      const body = Buffer.from(JSON.stringify({ token, csr: await makeCsr(newKey()) }));
      const slow = await startPartialUpload(env.url, { ca: env.ca, path: '/v1/enroll', body, sentBytes: 30, keepAlive: true });
      await pollUntil('the upload to be read', metrics, (t) => sample(t, 'tlsfleet_provisioning_issuance_bodies_reading') === 1);

      const exited = env.service.stop(); // SIGTERM
      await pollUntil(
        'the listener to stop accepting',
        () => request(`${env.url}/readyz`, { ca: env.ca }).then((r) => String(r.status), (e: NodeJS.ErrnoException) => String(e.code)),
        (status) => status !== '200',
      );
      const host = new URL(env.url).host;
      const answers = await slow.finish(`GET /readyz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect(answers[0]?.status, answers[0]?.body).toBe(201);
      const issued = JSON.parse(answers[0]!.body);
      expect(issued.deviceId).toBe('drainer');
      expect(new X509Certificate(issued.certificate).subjectAltName).toBe('URI:spiffe://tlsfleet.local/device/drainer');
      expect(answers.map((a) => a.status)).toEqual([201, 503]);
      expect(JSON.parse(answers[1]!.body)).toEqual({ status: 'draining' });
      expect(await exited).toBe(0);
      expect(env.service.output()).toContain('provisioning stopped');
    });
  });
});
