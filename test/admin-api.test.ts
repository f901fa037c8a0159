import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { startFleetEnv, type DeviceCredentials, type FleetEnv } from './harness/broker-env.js';
import { closedAt, sample, tryConnect, within } from './harness/broker-probe.js';
import { runCli } from './harness/cli.js';
import { postJson, request, type HttpAnswer } from './harness/https-client.js';
import { openssl } from './harness/openssl.js';
import { pollUntil } from './harness/poll.js';

const PUBLIC_URL = 'https://ca.fleet.example:8443';
/** docs/concepts.md: a revoked device is disconnected within 10 s. */
const REVOCATION_BOUND_MS = 10_000;

describe('admin API at fleet scale (issue 20)', () => {
  let env: FleetEnv;
  const clients: MqttClient[] = [];
  beforeAll(async () => {
    env = await startFleetEnv({ provisioningArgs: ['--public-url', PUBLIC_URL] });
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await env?.stop();
  });

  const admin = () => ({ authorization: `Bearer ${env.adminToken}` });
  const get = (path: string) => request(`${env.url}${path}`, { ca: env.ca, headers: admin() });
  const revokeSerial = (serial: string, body: unknown) => postJson(`${env.url}/v1/certificates/${serial}/revoke`, body, { ca: env.ca, headers: admin() });
  function expectError(res: HttpAnswer, status: number, code: string): void {
    expect(res.status, res.text()).toBe(status);
    expect(res.json().error.code).toBe(code);
  }
  async function crlText(): Promise<string> {
    const res = await request(`${env.url}/v1/crl`, { ca: env.ca });
    const file = join(env.dir, `crl-${Date.now()}-${Math.random()}.der`);
    writeFileSync(file, res.body);
    return (await openssl(['crl', '-inform', 'DER', '-in', file, '-noout', '-text'])).stdout;
  }
  /** Every page of `path` (which has a `?`), following nextCursor; asserts each page holds at most `limit`. */
  async function allPages<T>(path: string, limit: number): Promise<T[][]> {
    const pages: T[][] = [];
    let cursor: string | null = null;
    do {
      const res = await get(`${path}&limit=${limit}${cursor === null ? '' : `&cursor=${cursor}`}`);
      expect(res.status, res.text()).toBe(200);
      const body = res.json();
      expect(body.items.length).toBeLessThanOrEqual(limit);
      pages.push(body.items);
      cursor = body.nextCursor;
    } while (cursor !== null);
    return pages;
  }

  describe('GET /v1/devices', () => {
    const ids = ['page-a', 'page-b', 'page-c', 'page-d', 'page-e', 'page-f', 'page-g'];
    beforeAll(async () => {
      for (const id of ids) await env.enroll(id);
    });

    it('pages through every device once, in id order, with an opaque cursor and a null nextCursor on the last page', async () => {
      const pages = await allPages<{ deviceId: string }>('/v1/devices?status=active', 3);
      const listed = pages.flat().map((d) => d.deviceId);
      expect(new Set(listed).size).toBe(listed.length);
      expect(listed.filter((id) => id.startsWith('page-'))).toEqual(ids);
      expect(pages.slice(0, -1).every((p) => p.length === 3)).toBe(true);
    });

    it('answers the first page without parameters, with `devices` beside `items` for earlier callers', async () => {
      const res = await get('/v1/devices');
      expect(res.status).toBe(200);
      const body = res.json();
      expect(body.nextCursor).toBeNull();
      expect(body.devices).toEqual(body.items);
      const d = body.items.find((x: { deviceId: string }) => x.deviceId === 'page-a');
      expect(d).toMatchObject({ status: 'active', kind: 'device', certificates: [{ status: 'valid' }] });
      expect(d.currentSerial).toBe(d.certificates[0].serial);
      const paged = (await get('/v1/devices?limit=2')).json();
      expect(paged.devices).toBeUndefined();
      expect(paged.items).toHaveLength(2);
    });

    it.each([
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=ten', 'limit'],
      ['cursor=%%%', 'cursor'],
      ['cursor=ZGV2aWNlczpwYWdlLWF', 'cursor'], // "devices:page-a" with the unused low bits of its last character set: edited
      [`cursor=${Buffer.from('audit:3').toString('base64url')}`, 'cursor'],
      [`cursor=${Buffer.from('devices:a/b').toString('base64url')}`, 'cursor'],
      ['status=sleeping', 'status'],
      ['expiringBefore=tomorrow', 'expiringBefore'],
      ['expiringBefore=2026-13-45T00:00:00Z', 'expiringBefore'],
      ['limit=1&limit=2', 'limit'],
      ['expiring_before=2030-01-01', 'Unknown parameter'],
    ])('refuses ?%s with 400 invalid_request naming %s', async (query, named) => {
      const res = await get(`/v1/devices?${query}`);
      expectError(res, 400, 'invalid_request');
      expect(res.json().error.message).toContain(named);
    });

    it('filters by status (active, revoked, expired) and by expiringBefore', async () => {
      const short = await env.enroll('filter-short', { certTtl: '2s' });
      const long = await env.enroll('filter-long', { certTtl: '1h' });
      const gone = await env.enroll('filter-gone', { certTtl: '1h' });
      expect((await revokeSerial(gone.serial, { reason: 'cessationOfOperation' })).status).toBe(200);
      const listed = async (query: string) =>
        (await allPages<{ deviceId: string }>(`/v1/devices?${query}`, 1000)).flat().map((d) => d.deviceId).filter((id) => id.startsWith('filter-'));
      await pollUntil('filter-short to expire', () => listed('status=expired'), (x) => x.includes('filter-short'));
      expect(await listed('status=expired')).toEqual(['filter-short']);
      expect(await listed('status=revoked')).toEqual(['filter-gone']);
      expect(await listed('status=active')).toEqual(['filter-long']);
      const halfHour = new Date(Date.now() + 1800_000).toISOString();
      expect(await listed(`expiringBefore=${halfHour}`)).toEqual(['filter-short']);
      expect(await listed(`status=active&expiringBefore=${new Date(Date.now() + 7200_000).toISOString()}`)).toEqual(['filter-long']);
      expect(long.serial).not.toBe(short.serial);
    });

    it('keeps the admin guard on the listing', async () => {
      expectError(await request(`${env.url}/v1/devices?limit=1`, { ca: env.ca }), 401, 'unauthorized');
    });
  });

  describe('POST /v1/certificates/:serial/revoke', () => {
    let d: DeviceCredentials;
    let closed: Promise<number>;
    beforeAll(async () => {
      d = await env.enroll('one-cert');
      const live = await env.connect(d);
      live.on('error', () => undefined);
      clients.push(live);
      closed = closedAt(live);
    });

    it('revokes one certificate with its reason: the CRL carries the reason code and the broker closes its session', async () => {
      const t0 = Date.now();
      const res = await revokeSerial(d.serial, { reason: 'keyCompromise' });
      expect(res.status, res.text()).toBe(200);
      expect(res.json()).toMatchObject({ serial: d.serial, deviceId: 'one-cert', reason: 'keyCompromise', alreadyRevoked: false });
      const t1 = await within(closed, REVOCATION_BOUND_MS + 1000, 'revoked session close');
      expect(t1 - t0).toBeLessThan(REVOCATION_BOUND_MS);
      const again = await tryConnect(env.brokerUrl, { clientId: d.id, cert: d.chain, key: d.key, ca: env.ca });
      clients.push(again.client);
      expect(again.outcome).toBe('refused');
      const text = await crlText();
      const entry = text.slice(text.indexOf(`Serial Number: ${d.serial.toUpperCase()}`)).split('Serial Number:')[1] ?? '';
      expect(entry).toMatch(/X509v3 CRL Reason Code:\s*\n\s*Key Compromise/);
      const metrics = (await request(`${env.url}/metrics`, { ca: env.ca })).text();
      expect(sample(metrics, 'tlsfleet_provisioning_certificate_revocations_total', { reason: 'keyCompromise' })).toBe(1);
    });

    it('answers 200 alreadyRevoked with the first reason to a repeat, for the serial in any case and with leading zeros', async () => {
      const res = await revokeSerial(`000${d.serial.toUpperCase()}`, { reason: 'superseded' });
      expect(res.status, res.text()).toBe(200);
      expect(res.json()).toMatchObject({ serial: d.serial, reason: 'keyCompromise', alreadyRevoked: true });
      const device = (await get('/v1/devices/one-cert')).json();
      expect(device.certificates[0]).toMatchObject({ status: 'revoked', revocationReason: 'keyCompromise' });
    });

    it.each([
      ['an unknown serial', '7e57', { reason: 'keyCompromise' }, 404, 'not_found'],
      ['a serial that is not hex', 'xyz', {}, 400, 'invalid_request'],
      ['a serial over 20 octets', 'ab'.repeat(21), {}, 400, 'invalid_request'],
      ['certificateHold', undefined, { reason: 'certificateHold' }, 400, 'invalid_request'],
      ['removeFromCRL', undefined, { reason: 'removeFromCRL' }, 400, 'invalid_request'],
      ['an unknown reason', undefined, { reason: 'bored' }, 400, 'invalid_request'],
      ['a body that is not an object', undefined, ['keyCompromise'], 400, 'invalid_request'],
    ])('refuses %s, changing nothing', async (_name, serial, body, status, code) => {
      const live = await env.enroll(`refused-${status}-${Math.random().toString(36).slice(2, 8)}`);
      expectError(await revokeSerial(serial ?? live.serial, body), status, code);
      expect((await get(`/v1/devices/${live.id}`)).json().certificates[0].status).toBe('valid');
    });

    it('is for admins only', async () => {
      const other = await env.enroll('not-an-admin');
      const res = await postJson(`${env.url}/v1/certificates/${other.serial}/revoke`, {}, { ca: env.ca, cert: other.chain, key: other.key });
      expectError(res, 403, 'forbidden');
    });
  });

  describe('GET /v1/audit and tlsfleet audit', () => {
    it('pages through the audit record; the device filter and `tlsfleet audit` agree with it', async () => {
      const d = await env.enroll('audited');
      expect((await revokeSerial(d.serial, { reason: 'affiliationChanged' })).status).toBe(200);
      const all = (await allPages<{ id: number }>('/v1/audit?', 2)).flat();
      expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => a - b));
      const mine = (await allPages<Record<string, unknown>>('/v1/audit?device=audited', 1)).flat();
      expect(mine.map((e) => e.action)).toEqual(['token', 'issue', 'revoke']);
      expect(mine[2]).toMatchObject({ actor: expect.any(String), subject: 'audited', serial: d.serial, reason: 'affiliationChanged' });
      const cli = await runCli(['audit', '--data-dir', env.dataDir, '--device', 'audited']);
      expect(cli.code, cli.stderr).toBe(0);
      expect(cli.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual(mine);
      const first = await runCli(['audit', '--data-dir', env.dataDir, '--limit', '3']);
      expect(first.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual(all.slice(0, 3));
      expectError(await get('/v1/audit?device=a%2Fb'), 400, 'invalid_request');
      expectError(await get(`/v1/audit?cursor=${Buffer.from('devices:audited').toString('base64url')}`), 400, 'invalid_request');
    });
  });

  describe('CRL Distribution Point (--public-url)', () => {
    it('puts <public-url>/v1/crl in every issued certificate, and openssl checks the certificate against that CRL', async () => {
      const d = await env.enroll('cdp-1');
      const leafPem = new X509Certificate(d.chain).toString();
      const leaf = join(env.dir, 'cdp-leaf.pem');
      writeFileSync(leaf, leafPem);
      const text = (await openssl(['x509', '-in', leaf, '-noout', '-text'])).stdout;
      expect(text).toMatch(/X509v3 CRL Distribution Points: ?\n\s+Full Name:\s+URI:https:\/\/ca\.fleet\.example:8443\/v1\/crl\n/);
      const chain = join(env.dir, 'cdp-intermediate.pem');
      writeFileSync(chain, d.chain.slice(d.chain.indexOf('-----END CERTIFICATE-----') + 26));
      const verify = async () => {
        const res = await request(`${env.url}/v1/crl`, { ca: env.ca });
        const crl = join(env.dir, `cdp-${Math.random()}.crl`);
        writeFileSync(crl, res.body);
        const r = await openssl(['verify', '-crl_check', '-CRLfile', crl, '-CAfile', env.caFile, '-untrusted', chain, leaf]);
        return r.stdout + r.stderr;
      };
      expect(await verify()).toMatch(/: OK/);
      expect((await revokeSerial(d.serial, { reason: 'keyCompromise' })).status).toBe(200);
      expect(await verify()).toMatch(/certificate revoked/);
    });
  });
});

describe('provisioning --public-url and --retention are checked at start', () => {
  it.each([
    [['--public-url', 'http://ca.example'], /--public-url must be an https:\/\/ URL/],
    [['--public-url', 'https://user:pw@ca.example'], /user name or password/],
    [['--retention', '30m'], /--retention takes a duration of at least 1h/],
    [['--retention', 'forever'], /--retention takes a duration/],
  ])('refuses %j with exit 2 naming the flag, before anything starts', async (args, message) => {
    const r = await runCli(['provisioning', '--data-dir', '/nonexistent-tlsfleet-data', ...args]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
