import 'reflect-metadata';
import { createPublicKey, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as x509 from '@peculiar/x509';
import { derToPem, pemToDer, type ErrorCode } from '@tlsfleet/common';
import { startProvisioningEnv, type ProvisioningEnv } from './harness/fleet-env.js';
import { postJson, request, type HttpAnswer } from './harness/https-client.js';
import { makeCsr, newKey, type TestKey } from './harness/csr.js';
import { runCli } from './harness/cli.js';
import { errorStatuses } from './harness/openapi.js';
import { certText, foreignClientCertificate, KEY_RECIPES, mustOpenssl, opensslCsr } from './harness/openssl-pki.js';

/**
 * The status docs/reference/openapi.yaml gives each code; test/openapi.test.ts holds that
 * table to common's ERROR_CODES and to the live service.
 */
const STATUS = errorStatuses();
type Code = ErrorCode;

const MAX_BODY = 16 * 1024;

function expectError(res: HttpAnswer, code: Code, what = ''): void {
  expect(res.status, `${what} ${res.text()}`).toBe(STATUS[code]);
  expect(String(res.headers['content-type']), what).toMatch(/^application\/json/);
  const body = res.json();
  expect(body.error.code, what).toBe(code);
  expect(typeof body.error.message, what).toBe('string');
  expect(body.error.message.length, what).toBeGreaterThan(0);
}

const derOf = (pem: string): Buffer => pemToDer(pem, 'CERTIFICATE REQUEST')!;
const spkiOf = (key: TestKey): Buffer => createPublicKey(key.privateKey).export({ type: 'spki', format: 'der' });

/** Fixtures made once: good CSRs to damage, and CSRs for keys the policy refuses. */
interface Fixtures {
  good: Buffer;
  goodPem: string;
  flippedSignature: Buffer;
  swappedKey: Buffer;
  sha1: Buffer;
  rsa1024: Buffer;
  p192: Buffer;
  ed448: Buffer;
  dsa: Buffer;
}

interface CsrCase {
  name: string;
  code: Code;
  /** The `csr` field of POST /v1/enroll; absent: not sent to that route. */
  json?: (fx: Fixtures) => unknown;
  /** The body of EST simpleenroll; absent: not sent to that route. */
  est?: (fx: Fixtures) => string | Buffer;
}

const both = (der: (fx: Fixtures) => Buffer): Pick<CsrCase, 'json' | 'est'> => ({
  json: (fx) => derToPem(der(fx), 'CERTIFICATE REQUEST'),
  est: (fx) => der(fx).toString('base64'),
});
const samePem = (pem: (fx: Fixtures) => string): Pick<CsrCase, 'json' | 'est'> => ({ json: pem, est: pem });

const CSR_CASES: CsrCase[] = [
  {
    name: 'base64 that does not decode',
    code: 'invalid_csr',
    json: () => '-----BEGIN CERTIFICATE REQUEST-----\n@@@ not*base64 @@@\n-----END CERTIFICATE REQUEST-----\n',
    est: () => 'this is not base64!!',
  },
  { name: 'base64 of bytes that are not DER', code: 'invalid_csr', ...both(() => Buffer.from('definitely not a DER CertificationRequest')) },
  { name: 'a PEM block labelled CERTIFICATE instead of CERTIFICATE REQUEST', code: 'invalid_csr', ...samePem((fx) => derToPem(fx.good, 'CERTIFICATE')) },
  { name: 'a PEM block without its END line', code: 'invalid_csr', ...samePem((fx) => fx.goodPem.replace(/-----END[\s\S]*$/, '')) },
  { name: 'two CSRs in one PEM', code: 'invalid_csr', ...samePem((fx) => fx.goodPem + fx.goodPem) },
  { name: 'a CSR cut in half', code: 'invalid_csr', ...both((fx) => fx.good.subarray(0, Math.floor(fx.good.length / 2))) },
  { name: 'a CSR missing only its last byte', code: 'invalid_csr', ...both((fx) => fx.good.subarray(0, fx.good.length - 1)) },
  { name: 'a CSR followed by trailing bytes', code: 'invalid_csr', ...both((fx) => Buffer.concat([fx.good, Buffer.from([0, 0])])) },
  { name: 'a CSR whose signature has one byte flipped', code: 'invalid_csr', ...both((fx) => fx.flippedSignature) },
  { name: "a CSR with another key's public key swapped in", code: 'invalid_csr', ...both((fx) => fx.swappedKey) },
  { name: 'a CSR signed with SHA-1 by openssl', code: 'invalid_csr', ...both((fx) => fx.sha1) },
  { name: 'an RSA-1024 key', code: 'key_rejected', ...both((fx) => fx.rsa1024) },
  { name: 'a P-192 key made with openssl', code: 'key_rejected', ...both((fx) => fx.p192) },
  { name: 'an Ed448 key made with openssl', code: 'key_rejected', ...both((fx) => fx.ed448) },
  { name: 'a DSA-2048 key made with openssl', code: 'key_rejected', ...both((fx) => fx.dsa) },
  { name: 'a body without a csr field', code: 'invalid_csr', json: () => undefined },
  { name: 'a csr that is not a string', code: 'invalid_csr', json: (fx) => ({ der: fx.good.toString('base64') }) },
  { name: 'an empty body', code: 'invalid_csr', est: () => '' },
  { name: 'binary DER instead of base64', code: 'invalid_csr', est: (fx) => fx.good },
];

describe('Bad input: each answered with the stable error code and nothing changed in the store', () => {
  let env: ProvisioningEnv;
  let scratch: string;
  const fx = {} as Fixtures;
  let ids = 0;

  beforeAll(async () => {
    // Rate limiting and the per-client open-request cap off: this suite sends far more than 40
    // issuance requests from one address, 20 of them at once.
    env = await startProvisioningEnv({ serviceArgs: ['--client-rate', '0', '--max-inflight-per-client', '0'] });
    scratch = env.dir;
    const key = newKey();
    fx.goodPem = await makeCsr(key);
    fx.good = derOf(fx.goodPem);
    fx.flippedSignature = Buffer.from(fx.good);
    fx.flippedSignature[fx.flippedSignature.length - 1]! ^= 0x01;
    const other = newKey();
    const at = fx.good.indexOf(spkiOf(key));
    expect(at).toBeGreaterThan(0);
    fx.swappedKey = Buffer.from(fx.good);
    spkiOf(other).copy(fx.swappedKey, at); // P-256 SPKIs are all 91 bytes: only the key changes
    expect(fx.swappedKey.length).toBe(fx.good.length);
    [fx.rsa1024, fx.sha1, fx.p192, fx.ed448, fx.dsa] = await Promise.all([
      makeCsr(newKey('rsa1024')).then(derOf),
      opensslCsr(scratch, 'sha1', KEY_RECIPES['P-256'], ['-sha1']).then((r) => r.der),
      opensslCsr(scratch, 'p192', KEY_RECIPES['P-192']).then((r) => r.der),
      opensslCsr(scratch, 'ed448', KEY_RECIPES.Ed448).then((r) => r.der),
      opensslCsr(scratch, 'dsa', KEY_RECIPES['DSA-2048']).then((r) => r.der),
    ]);
  });
  afterAll(async () => {
    await env?.stop();
  });

  const adminHeaders = () => ({ authorization: `Bearer ${env.adminToken}` });
  const nextId = (prefix = 'bad') => `${prefix}-${++ids}`;
  const enroll = (token: unknown, csr: unknown) => postJson(`${env.url}/v1/enroll`, { token, csr }, { ca: env.ca });
  const simpleenroll = (body: string | Buffer, authorization: string) =>
    request(`${env.url}/.well-known/est/simpleenroll`, { ca: env.ca, method: 'POST', headers: { 'content-type': 'application/pkcs10', authorization }, body });
  const adminGet = (path: string) => request(`${env.url}${path}`, { ca: env.ca, headers: adminHeaders() });

  /** A token minted online by the admin: cheaper than a CLI process per case. */
  async function mint(id: string): Promise<string> {
    const res = await postJson(`${env.url}/v1/tokens`, { deviceId: id }, { ca: env.ca, headers: adminHeaders() });
    expect(res.status, res.text()).toBe(201);
    return res.json().token;
  }
  async function deviceIds(): Promise<string[]> {
    const res = await adminGet('/v1/devices');
    expect(res.status).toBe(200);
    return res.json().devices.map((d: { deviceId: string }) => d.deviceId);
  }
  async function certificatesOf(id: string): Promise<Array<{ serial: string; status: string }>> {
    const res = await adminGet(`/v1/devices/${id}`);
    expect(res.status, res.text()).toBe(200);
    return res.json().certificates;
  }
  /** Nothing was recorded for `id`, and its token is unspent: it enrolls now, once. */
  async function expectUntouched(id: string, token: string): Promise<void> {
    expect(await deviceIds()).not.toContain(id);
    const ok = await enroll(token, await makeCsr(newKey()));
    expect(ok.status, ok.text()).toBe(201);
    expect(ok.json().deviceId).toBe(id);
    expect(await certificatesOf(id)).toHaveLength(1);
  }
  async function enrolledDevice(id: string): Promise<{ id: string; key: TestKey; chain: string; serial: string }> {
    const key = newKey();
    const res = await enroll(await mint(id), await makeCsr(key));
    expect(res.status, res.text()).toBe(201);
    return { id, key, chain: res.json().chain, serial: res.json().serial };
  }

  describe('CSRs', () => {
    for (const c of CSR_CASES.filter((x) => x.json)) it(`POST /v1/enroll answers ${c.code} to ${c.name} and leaves the token unspent`, async () => {
      const id = nextId();
      const token = await mint(id);
      expectError(await enroll(token, c.json!(fx)), c.code);
      await expectUntouched(id, token);
    });

    for (const c of CSR_CASES.filter((x) => x.est)) it(`EST simpleenroll answers ${c.code} to ${c.name} and leaves the token unspent`, async () => {
      const id = nextId();
      const token = await mint(id);
      expectError(await simpleenroll(c.est!(fx), `Bearer ${token}`), c.code);
      await expectUntouched(id, token);
    });

    it('issues for a CSR asking for CA:true, keyCertSign and extra SANs over JSON, but copies none of it', async () => {
      const id = nextId('greedy');
      const csr = await makeCsr(newKey(), {
        subject: 'CN=root, O=attacker',
        extensions: [
          new x509.BasicConstraintsExtension(true, 5, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          new x509.SubjectAlternativeNameExtension([
            { type: 'dns', value: 'evil.example' },
            { type: 'ip', value: '10.9.9.9' },
            { type: 'url', value: 'spiffe://tlsfleet.local/device/someone-else' },
          ]),
        ],
      });
      const res = await enroll(await mint(id), csr);
      expect(res.status, res.text()).toBe(201);
      const file = join(scratch, `${id}.pem`);
      writeFileSync(file, res.json().certificate);
      expectOnlyOurProfile(await certText(file), id);
    });

    it('issues for an openssl CSR asking for CA:true and extra SANs over EST, but copies none of it', async () => {
      const id = nextId('greedy');
      const { der } = await opensslCsr(scratch, id, KEY_RECIPES['P-256'], [
        '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
        '-addext', 'subjectAltName=DNS:evil.example,IP:10.9.9.9,URI:spiffe://tlsfleet.local/device/someone-else',
      ]);
      const res = await simpleenroll(der.toString('base64'), `Bearer ${await mint(id)}`);
      expect(res.status, res.text()).toBe(200);
      const p7 = Buffer.from(res.text(), 'base64');
      const certs = await mustOpenssl(['pkcs7', '-inform', 'DER', '-print_certs'], p7);
      const file = join(scratch, `${id}.pem`);
      writeFileSync(file, /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/.exec(certs)![0]);
      expectOnlyOurProfile(await certText(file), id);
    });

    it('takes the identity from the token, never from a deviceId or kind slipped into the enroll body', async () => {
      const id = nextId('honest');
      const res = await postJson(`${env.url}/v1/enroll`, { token: await mint(id), csr: fx.goodPem, deviceId: 'someone-else', kind: 'service' }, { ca: env.ca });
      expect(res.status, res.text()).toBe(201);
      expect(res.json().deviceId).toBe(id);
      expect(res.text()).not.toContain('someone-else');
      expect(await deviceIds()).not.toContain('someone-else');
    });
  });

  describe('body size', () => {
    /** A JSON enroll body of exactly `size` bytes: the token and a csr of filler. */
    const jsonOfSize = (token: string, size: number) => {
      const empty = JSON.stringify({ token, csr: '' });
      return JSON.stringify({ token, csr: 'A'.repeat(size - empty.length) });
    };
    const cases: Array<{ route: string; size: number; code: Code; send: (token: string, size: number) => Promise<HttpAnswer> }> = [];
    for (const [size, code] of [[MAX_BODY + 1, 'payload_too_large'], [64 * 1024, 'payload_too_large'], [MAX_BODY, 'invalid_csr']] as const) {
      cases.push({
        route: 'POST /v1/enroll',
        size,
        code,
        send: (token, n) => request(`${env.url}/v1/enroll`, { ca: env.ca, method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonOfSize(token, n) }),
      });
      // 'A' × 4n is valid base64 (of zero bytes, not a CSR), so only the size can make it 413.
      cases.push({ route: 'EST simpleenroll', size, code: code === 'payload_too_large' ? code : 'invalid_csr', send: (token, n) => simpleenroll('A'.repeat(n), `Bearer ${token}`) });
    }

    for (const c of cases) it(`${c.route} answers ${c.code} to a body of ${c.size} bytes and leaves the token unspent`, async () => {
      const id = nextId('big');
      const token = await mint(id);
      expectError(await c.send(token, c.size), c.code);
      await expectUntouched(id, token);
    });
  });

  describe('tokens', () => {
    const JSON_TOKENS: Array<{ name: string; code: Code; variant: (t: string) => unknown }> = [
      { name: 'a well-formed token that was never minted', code: 'invalid_token', variant: () => `tf_${randomBytes(24).toString('base64url')}` },
      { name: 'the token with its last character changed', code: 'invalid_token', variant: (t) => t.slice(0, -1) + (t.endsWith('A') ? 'B' : 'A') },
      { name: 'the token cut short', code: 'invalid_token', variant: (t) => t.slice(0, 10) },
      { name: 'a malformed token', code: 'invalid_token', variant: () => 'not-a-token' },
      { name: 'an empty token', code: 'invalid_token', variant: () => '' },
      { name: 'a token that is not a string', code: 'invalid_token', variant: () => 12345 },
      { name: 'the base64 of the valid token', code: 'invalid_token', variant: (t) => Buffer.from(t).toString('base64') },
    ];
    for (const c of JSON_TOKENS) it(`POST /v1/enroll answers ${c.code} to ${c.name} and the real token still enrolls`, async () => {
      const id = nextId('tok');
      const token = await mint(id);
      expectError(await enroll(c.variant(token), await makeCsr(newKey())), c.code);
      await expectUntouched(id, token);
    });

    const EST_AUTH: Array<{ name: string; code: Code; header: (t: string) => string }> = [
      { name: 'a bearer token that was never minted', code: 'invalid_token', header: () => `Bearer tf_${randomBytes(24).toString('base64url')}` },
      { name: 'the bearer token with its last character changed', code: 'invalid_token', header: (t) => `Bearer ${t.slice(0, -1)}${t.endsWith('A') ? 'B' : 'A'}` },
      { name: 'a malformed bearer token', code: 'invalid_token', header: () => 'Bearer not-a-token' },
      { name: 'Basic credentials with a wrong password', code: 'invalid_token', header: () => `Basic ${Buffer.from('device:wrong').toString('base64')}` },
      { name: 'Basic credentials with the token as the user name', code: 'invalid_token', header: (t) => `Basic ${Buffer.from(`${t}:`).toString('base64')}` },
      { name: 'an unsupported Digest scheme', code: 'unauthorized', header: (t) => `Digest username="x", response="${t}"` },
    ];
    for (const c of EST_AUTH) it(`EST simpleenroll answers ${c.code} to ${c.name} and the real token still enrolls`, async () => {
      const id = nextId('tok');
      const token = await mint(id);
      expectError(await simpleenroll(derOf(await makeCsr(newKey())).toString('base64'), c.header(token)), c.code);
      await expectUntouched(id, token);
    });

    it('answers token_used to a spent token over JSON and EST, and the first certificate stays the only one', async () => {
      const id = nextId('used');
      const token = await mint(id);
      const first = await enroll(token, await makeCsr(newKey()));
      expect(first.status).toBe(201);
      expectError(await enroll(token, await makeCsr(newKey())), 'token_used', 'json');
      expectError(await simpleenroll(derOf(await makeCsr(newKey())).toString('base64'), `Bearer ${token}`), 'token_used', 'est');
      const certs = await certificatesOf(id);
      expect(certs.map((c) => c.serial)).toEqual([first.json().serial]);
      expect(certs[0]!.status).toBe('valid');
    });

    it('lets exactly one of 20 concurrent enrollments with one token win, across JSON and EST', async () => {
      const id = nextId('race');
      const token = await mint(id);
      const csrs = await Promise.all(Array.from({ length: 20 }, () => makeCsr(newKey())));
      const answers = await Promise.all(
        csrs.map((csr, i) => (i % 2 === 0 ? enroll(token, csr) : simpleenroll(derOf(csr).toString('base64'), `Bearer ${token}`))),
      );
      const winners = answers.filter((a) => a.status === 201 || a.status === 200);
      expect(winners).toHaveLength(1);
      const losers = answers.filter((a) => a.status === 409 && a.json().error.code === 'token_used');
      expect(losers).toHaveLength(19);
      expect(await certificatesOf(id)).toHaveLength(1);
    });
  });

  describe('token requests and device ids', () => {
    const BAD_IDS: Array<[string, string]> = [
      ['a slash', 'a/b'],
      ['a plus', 'a+b'],
      ['a hash', 'a#b'],
      ['a dollar', '$SYS'],
      ['a NUL', 'a\u0000b'],
      ['65 characters', 'x'.repeat(65)],
      ['an empty string', ''],
      ['a leading dot', '.hidden'],
      ['a leading dash', '-dash'],
      ['a space', 'a b'],
      ['a non-ASCII letter', 'sensör'],
    ];

    it.each(BAD_IDS)('POST /v1/tokens refuses a device id with %s with 400 invalid_request', async (_what, id) => {
      const before = await deviceIds();
      const res = await postJson(`${env.url}/v1/tokens`, { deviceId: id }, { ca: env.ca, headers: adminHeaders() });
      expectError(res, 'invalid_request');
      expect(res.json().token).toBeUndefined();
      expect(await deviceIds()).toEqual(before);
    });

    it('POST /v1/tokens refuses a service name with a wildcard and a deviceId that is not a string', async () => {
      for (const body of [{ deviceId: 'ingest/+', kind: 'service' }, { deviceId: 42 }, { deviceId: ['a'] }, {}]) {
        expectError(await postJson(`${env.url}/v1/tokens`, body, { ca: env.ca, headers: adminHeaders() }), 'invalid_request', JSON.stringify(body));
      }
    });

    it.each<[string, Record<string, unknown>]>([
      ['kind "admin" (admin identities come only from init)', { deviceId: 'kind-admin', kind: 'admin' }],
      ['kind "__proto__"', { deviceId: 'kind-proto', kind: '__proto__' }],
      ['ttlSeconds 0', { deviceId: 'ttl-zero', ttlSeconds: 0 }],
      ['ttlSeconds as a string', { deviceId: 'ttl-string', ttlSeconds: '60' }],
      ['ttlSeconds past 30 days', { deviceId: 'ttl-long', ttlSeconds: 30 * 86_400 + 1 }],
      ['a fractional certTtlSeconds', { deviceId: 'cert-frac', certTtlSeconds: 1.5 }],
      ['a negative certTtlSeconds', { deviceId: 'cert-neg', certTtlSeconds: -5 }],
      ['certTtlSeconds past 397 days', { deviceId: 'cert-long', certTtlSeconds: 397 * 86_400 + 1 }],
    ])('POST /v1/tokens refuses %s with 400 invalid_request', async (_what, body) => {
      const res = await postJson(`${env.url}/v1/tokens`, body, { ca: env.ca, headers: adminHeaders() });
      expectError(res, 'invalid_request');
      expect(res.json().token).toBeUndefined();
    });

    it('accepts a device id of exactly 64 characters (the boundary the refusals sit on)', async () => {
      const id = `a${'b'.repeat(63)}`;
      const token = await mint(id);
      const res = await enroll(token, await makeCsr(newKey()));
      expect(res.status).toBe(201);
      expect(res.json().deviceId).toBe(id);
    });

    // The command line shares the API's validation, so a few shapes show its plumbing (exit
    // status, message, nothing on stdout); each run costs a Node start-up. NUL cannot be
    // passed in argv at all.
    const CLI_IDS: Array<[string, string]> = [
      ['a topic wildcard and separators', 'a/+#$b'],
      ['65 characters', 'x'.repeat(65)],
      ['an empty string', ''],
    ];
    it('`tlsfleet token --device` refuses every malformed id with exit status 1, the code on stderr and no token on stdout', async () => {
      const before = await deviceIds();
      const results = await Promise.all(CLI_IDS.map(([, id]) => runCli(['token', '--data-dir', env.dataDir, `--device=${id}`])));
      results.forEach((r, i) => {
        const id = CLI_IDS[i]![1];
        expect(r.code, `${JSON.stringify(id)}: ${r.stderr}`).toBe(1);
        expect(r.stderr, id).toContain('invalid_request');
        expect(r.stderr, id).toMatch(/device id|1–64 characters/i);
        expect(r.stdout, id).toBe('');
      });
      const service = await runCli(['token', '--data-dir', env.dataDir, '--service=ingest/#']);
      expect(service.code).toBe(1);
      expect(service.stderr).toContain('invalid_request');
      expect(await deviceIds()).toEqual(before);
    });

    it('GET /v1/devices/:id answers invalid_request for a malformed id and not_found for an unknown one', async () => {
      expectError(await adminGet(`/v1/devices/${encodeURIComponent('a+b')}`), 'invalid_request');
      expectError(await adminGet(`/v1/devices/${encodeURIComponent('$SYS')}`), 'invalid_request');
      expectError(await adminGet('/v1/devices/nobody-here'), 'not_found');
    });
  });

  describe('admin routes', () => {
    const ROUTES: Array<[method: string, path: string, body?: unknown]> = [
      ['GET', '/v1/devices'],
      ['GET', '/v1/devices/guarded'],
      ['POST', '/v1/tokens', { deviceId: 'minted-by-intruder' }],
      ['POST', '/v1/devices/guarded/revoke', {}],
    ];
    const CREDENTIALS: Array<{ name: string; code: Code; headers: (env: ProvisioningEnv) => Record<string, string> }> = [
      { name: 'no credential', code: 'unauthorized', headers: () => ({}) },
      { name: 'a wrong bearer token', code: 'forbidden', headers: (e) => ({ authorization: `Bearer ${e.adminToken.slice(0, -1)}${e.adminToken.endsWith('x') ? 'y' : 'x'}` }) },
      { name: 'the admin token with a prefix', code: 'forbidden', headers: (e) => ({ authorization: `Bearer x${e.adminToken}` }) },
      { name: 'the admin token under the Basic scheme', code: 'unauthorized', headers: (e) => ({ authorization: `Basic ${Buffer.from(`admin:${e.adminToken}`).toString('base64')}` }) },
    ];

    it('answers 401 without a credential and 403 with a wrong one on every admin route, and none of them acts', async () => {
      const guarded = await enrolledDevice('guarded');
      for (const [method, path, body] of ROUTES) {
        for (const cred of CREDENTIALS) {
          const res = await request(`${env.url}${path}`, {
            ca: env.ca,
            method,
            headers: { 'content-type': 'application/json', ...cred.headers(env) },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          });
          expectError(res, cred.code, `${method} ${path} with ${cred.name}`);
          expect(res.text(), 'no data leaks into the refusal').not.toContain(guarded.serial);
        }
      }
      const certs = await certificatesOf('guarded');
      expect(certs).toEqual([expect.objectContaining({ serial: guarded.serial, status: 'valid' })]);
      expect(await deviceIds()).not.toContain('minted-by-intruder');
    });
  });

  describe('renewal and foreign certificates', () => {
    const renewJson = (cert?: string, key?: string) => postJson(`${env.url}/v1/renew`, { csr: fx.goodPem }, { ca: env.ca, cert, key });
    const renewEst = (cert?: string, key?: string) =>
      request(`${env.url}/.well-known/est/simplereenroll`, { ca: env.ca, method: 'POST', headers: { 'content-type': 'application/pkcs10' }, body: fx.good.toString('base64'), cert, key });

    it('refuses renewal without a client certificate with 401 unauthorized on both routes', async () => {
      expectError(await renewJson(), 'unauthorized', 'json');
      expectError(await renewEst(), 'unauthorized', 'est');
    });

    it('refuses renewal with a revoked certificate with 403 revoked on both routes and issues nothing', async () => {
      const d = await enrolledDevice(nextId('revoked'));
      const revoked = await postJson(`${env.url}/v1/devices/${d.id}/revoke`, {}, { ca: env.ca, headers: adminHeaders() });
      expect(revoked.status).toBe(200);
      expectError(await renewJson(d.chain, d.key.privatePem), 'revoked', 'json');
      expectError(await renewEst(d.chain, d.key.privatePem), 'revoked', 'est');
      expect(await certificatesOf(d.id)).toEqual([expect.objectContaining({ serial: d.serial, status: 'revoked' })]);
    });

    it('refuses a look-alike certificate from another CA, with the same identity and serial as a real device, with 401 on every route', async () => {
      const id = nextId('victim');
      const real = await enrolledDevice(id);
      const foreign = await foreignClientCertificate(scratch, { uri: `spiffe://tlsfleet.local/device/${id}`, serialHex: real.serial, subject: id });
      // The fixture really is a look-alike: same serial, same URI SAN.
      const text = await mustOpenssl(['x509', '-noout', '-serial', '-ext', 'subjectAltName'], foreign.certPem);
      expect(text.toLowerCase().replace(/^0+/, '')).toContain(real.serial.toLowerCase().replace(/^0+/, ''));
      expect(text).toContain(`URI:spiffe://tlsfleet.local/device/${id}`);
      const chain = foreign.certPem + foreign.caPem;
      expectError(await renewJson(chain, foreign.keyPem), 'unauthorized', 'json renew');
      expectError(await renewEst(chain, foreign.keyPem), 'unauthorized', 'est reenroll');
      const asAdmin = await request(`${env.url}/v1/devices`, { ca: env.ca, cert: chain, key: foreign.keyPem });
      expect([401, 403]).toContain(asAdmin.status);
      expect(asAdmin.json().error.code).toBe(asAdmin.status === 401 ? 'unauthorized' : 'forbidden');
      expect(await certificatesOf(id)).toEqual([expect.objectContaining({ serial: real.serial, status: 'valid' })]);
    });

    it('refuses the admin certificate of another data dir with the same trust domain', async () => {
      const otherDir = join(scratch, 'other-ca');
      const init = await runCli(['init', '--data-dir', otherDir]);
      expect(init.code, init.stderr).toBe(0);
      const cert = readFileSync(join(otherDir, 'admin.pem'), 'utf8');
      const key = readFileSync(join(otherDir, 'admin.key'), 'utf8');
      // Same trust domain, same admin identity: only the CA differs.
      expect((await mustOpenssl(['x509', '-noout', '-ext', 'subjectAltName'], cert))).toContain('URI:spiffe://tlsfleet.local/admin/operator');
      const before = await deviceIds();
      const list = await request(`${env.url}/v1/devices`, { ca: env.ca, cert, key });
      expect([401, 403]).toContain(list.status);
      expect(list.text()).not.toContain('"devices"');
      const minted = await postJson(`${env.url}/v1/tokens`, { deviceId: 'minted-by-other-ca' }, { ca: env.ca, cert, key });
      expect([401, 403]).toContain(minted.status);
      expect(minted.json().token).toBeUndefined();
      expectError(await renewJson(cert, key), 'unauthorized', 'renew with the foreign admin certificate');
      expect(await deviceIds()).toEqual(before);
    });
  });

  describe('malformed requests and unknown routes', () => {
    it('answers 400 invalid_request to malformed JSON on every JSON route and acts on none of it', async () => {
      const id = nextId('json');
      const token = await mint(id);
      const device = await enrolledDevice(nextId('json-renewer'));
      const post = (path: string, body: string, extra: { cert?: string; key?: string; headers?: Record<string, string> } = {}) =>
        request(`${env.url}${path}`, { ca: env.ca, method: 'POST', headers: { 'content-type': 'application/json', ...extra.headers }, body, cert: extra.cert, key: extra.key });
      const before = await deviceIds();
      expectError(await post('/v1/enroll', `{"token":"${token}","csr":`), 'invalid_request', 'truncated enroll');
      expectError(await post('/v1/enroll', `token=${token}`), 'invalid_request', 'form-encoded enroll');
      expectError(await post('/v1/enroll', `{'token':'${token}'}`), 'invalid_request', 'single-quoted enroll');
      expectError(await post('/v1/tokens', '{"deviceId":', { headers: adminHeaders() }), 'invalid_request', 'truncated tokens');
      expectError(await post('/v1/renew', '{"csr":', { cert: device.chain, key: device.key.privatePem }), 'invalid_request', 'truncated renew');
      expect(await deviceIds()).toEqual(before);
      expect(await certificatesOf(device.id)).toHaveLength(1);
      await expectUntouched(id, token);
    });

    // The plain bodies are valid enrollments: a server that ignored the encoding would spend the token.
    const ENCODINGS: Array<{ name: string; route: 'POST /v1/enroll' | 'EST simpleenroll'; encoding: string; body: (token: string) => Buffer; code: Code }> = [
      { name: 'gzip that is not gzip', route: 'POST /v1/enroll', encoding: 'gzip', body: (t) => Buffer.from(JSON.stringify({ token: t, csr: fx.goodPem })), code: 'invalid_request' },
      { name: 'br that is not brotli', route: 'POST /v1/enroll', encoding: 'br', body: (t) => Buffer.from(JSON.stringify({ token: t, csr: fx.goodPem })), code: 'invalid_request' },
      { name: 'deflate that is not deflate', route: 'POST /v1/enroll', encoding: 'deflate', body: (t) => Buffer.from(JSON.stringify({ token: t, csr: fx.goodPem })), code: 'invalid_request' },
      { name: 'an unknown encoding', route: 'POST /v1/enroll', encoding: 'x-custom', body: (t) => Buffer.from(JSON.stringify({ token: t, csr: fx.goodPem })), code: 'invalid_request' },
      { name: 'gzip that is not gzip', route: 'EST simpleenroll', encoding: 'gzip', body: () => Buffer.from(fx.good.toString('base64')), code: 'invalid_request' },
      { name: 'gzip that inflates to 1 MiB', route: 'POST /v1/enroll', encoding: 'gzip', body: (t) => gzipSync(JSON.stringify({ token: t, csr: 'A'.repeat(1 << 20) })), code: 'payload_too_large' },
      { name: 'gzip that inflates to 1 MiB', route: 'EST simpleenroll', encoding: 'gzip', body: () => gzipSync('A'.repeat(1 << 20)), code: 'payload_too_large' },
    ];
    for (const c of ENCODINGS) it(`${c.route} answers ${c.code} to a body in ${c.name}, spending nothing`, async () => {
      const id = nextId('zip');
      const token = await mint(id);
      const body = c.body(token);
      expect(body.length).toBeLessThan(MAX_BODY);
      const headers: Record<string, string> =
        c.route === 'EST simpleenroll' ? { 'content-type': 'application/pkcs10', authorization: `Bearer ${token}` } : { 'content-type': 'application/json' };
      const path = c.route === 'EST simpleenroll' ? '/.well-known/est/simpleenroll' : '/v1/enroll';
      const res = await request(`${env.url}${path}`, { ca: env.ca, method: 'POST', headers: { ...headers, 'content-encoding': c.encoding }, body });
      expectError(res, c.code);
      await expectUntouched(id, token);
    });

    it.each([
      ['GET', '/v1/devices/%E0%A4%A'],
      ['POST', '/v1/devices/%E0%A4%A/revoke'],
    ])('answers 400 invalid_request to %s %s, whose percent-encoding does not decode', async (method, path) => {
      const res = await request(`${env.url}${path}`, { ca: env.ca, method, headers: adminHeaders() });
      expectError(res, 'invalid_request');
    });

    it.each([
      ['GET', '/v1/nope'],
      ['GET', '/v1/enroll'],
      ['POST', '/v1/enroll/extra'],
      ['PUT', '/v1/tokens'],
      ['DELETE', '/v1/devices/guarded'],
      ['GET', '/.well-known/est/serverkeygen'],
      ['POST', '/.well-known/est/fullcmc'],
      ['GET', '/'],
    ])('answers 404 not_found to %s %s', async (method, path) => {
      const res = await request(`${env.url}${path}`, { ca: env.ca, method, headers: adminHeaders() });
      expectError(res, 'not_found');
    });
  });
});

/** The certificate carries our profile for `id` and nothing the CSR asked for. */
function expectOnlyOurProfile(text: string, id: string): void {
  expect(text).toMatch(new RegExp(`Subject: CN\\s*=\\s*${id}\\s*\\n`));
  expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE\s*\n/);
  expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\s*\n/);
  expect(text).not.toContain('Certificate Sign');
  expect(text).not.toContain('pathlen');
  expect(text).not.toContain('evil');
  expect(text).not.toContain('10.9.9.9');
  expect(text).not.toContain('someone-else');
  expect(text).not.toContain('attacker');
  expect(/X509v3 Subject Alternative Name:\s*\n\s*(.*)\n/.exec(text)?.[1]).toBe(`URI:spiffe://tlsfleet.local/device/${id}`);
}
