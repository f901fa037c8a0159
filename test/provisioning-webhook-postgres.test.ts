import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startProvisioningProcess, type Service } from './harness/cli.js';
import { makeCsr, newKey } from './harness/csr.js';
import { postJson, request } from './harness/https-client.js';
import { PostgresStore } from '@tlsfleet/provisioning';
import { json, startReceiver, type Receiver } from './harness/hook-receiver.js';
import { startPostgres, type PostgresServer } from './harness/postgres.js';
import { tempDir } from './harness/temp-dir.js';
import { pollUntil } from './harness/poll.js';

// Two `tlsfleet provisioning` processes on one PostgreSQL database, both with the same
// --webhook: every event reaches the receiver once, in order per device, although both
// instances claim deliveries from the same outbox, and a failing receiver only delays them.
describe('webhooks from two instances on one PostgreSQL', () => {
  const tmp = tempDir('tlsfleet-pg-webhook-');
  const SECRET = 'pg-webhook-secret';
  let pg: PostgresServer;
  let hook: Receiver;
  const services: Service[] = [];
  let ca: string;
  let admin: string;
  /** Requests answered 503 before the receiver recovers. */
  let failuresLeft = 6;
  const accepted: { id: string; type: string; device: string; serial: string }[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
    const storeUrl = await pg.createDatabase('webhooks');
    hook = await startReceiver((r, res) => {
      if (failuresLeft > 0) {
        failuresLeft--;
        json(res, 503, {});
        return;
      }
      expect(r.headers['x-tlsfleet-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(r.raw).digest('hex')}`);
      accepted.push(JSON.parse(r.raw));
      json(res, 200, {});
    });
    const dataDir = join(tmp.path, 'data');
    const init = await runCli(['init', '--data-dir', dataDir]);
    expect(init.code).toBe(0);
    const secretFile = join(tmp.path, 'webhook.secret');
    writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
    const args = ['--store', storeUrl, '--webhook', hook.url, '--webhook-secret-file', secretFile, '--max-inflight-per-client', '0'];
    const started = await Promise.allSettled([0, 1].map(() => startProvisioningProcess(dataDir, args)));
    for (const s of started) if (s.status === 'fulfilled') services.push(s.value);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    ca = readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8');
    admin = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  });
  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()));
    await hook?.close();
    await pg?.stop();
    tmp.cleanup();
  });

  it('delivers each event once and in order per device', async () => {
    const [a, b] = services as [Service, Service];
    const at = (i: number) => (i % 2 === 0 ? a : b);
    const headers = { authorization: `Bearer ${admin}` };
    const devices = Array.from({ length: 20 }, (_, i) => `pgw-${i}`);
    const enrolled = await Promise.all(
      devices.map(async (device, i) => {
        const token = (await postJson(`${at(i).url}/v1/tokens`, { deviceId: device }, { ca, headers })).json().token as string;
        const key = newKey();
        const res = await postJson(`${at(i + 1).url}/v1/enroll`, { token, csr: await makeCsr(key) }, { ca });
        expect(res.status).toBe(201);
        return { device, key, cert: res.json().chain as string, serial: res.json().serial as string };
      }),
    );
    const renewed = await Promise.all(
      enrolled.slice(0, 5).map(async (d, i) => {
        const res = await postJson(`${at(i).url}/v1/renew`, { csr: await makeCsr(newKey()) }, { ca, cert: d.cert, key: d.key.privatePem });
        expect(res.status).toBe(201);
        return res.json().serial as string;
      }),
    );
    await Promise.all(enrolled.slice(10, 15).map((d, i) => postJson(`${at(i).url}/v1/devices/${d.device}/revoke`, {}, { ca, headers })));
    const expected = 20 + 5 + 5;
    for (let i = 0; i < 600 && accepted.length < expected; i++) await hook.next();
    expect(accepted.length).toBe(expected);
    expect(new Set(accepted.map((e) => e.id)).size).toBe(expected);
    for (const [i, d] of enrolled.entries()) {
      const mine = accepted.filter((e) => e.device === d.device).map((e) => `${e.type}:${e.serial}`);
      const want = [`enrolled:${d.serial}`, ...(i < 5 ? [`renewed:${renewed[i]}`] : []), ...(i >= 10 && i < 15 ? [`revoked:${d.serial}`] : [])];
      expect(mine, d.device).toEqual(want);
    }
    expect(failuresLeft).toBe(0);
    // The receiver answered the last one; the instances record it just after.
    const undelivered = () => pg.query('webhooks', 'SELECT count(*) FROM webhook_deliveries WHERE delivered_at IS NULL');
    await pollUntil('every delivery recorded as done', undelivered, (n) => n.trim() === '0', 200);
    const delivered = await Promise.all(services.map(async (s) => Number(/tlsfleet_provisioning_webhook_deliveries_total\{result="delivered"\} (\d+)/.exec((await request(`${s.url}/metrics`, { ca })).text())?.[1] ?? 0)));
    expect(delivered[0]! + delivered[1]!).toBe(expected);
    expect((await pg.query('webhooks', 'SELECT count(*) FROM webhook_deliveries WHERE attempts > 1')).trim()).not.toBe('0');
  });

  it('never leases one delivery to two instances claiming at once, and only the oldest of each device', async () => {
    const url = await pg.createDatabase('claims');
    const stores = await Promise.all([PostgresStore.open(url), PostgresStore.open(url)]);
    try {
      const values = Array.from({ length: 60 }, (_, i) => `('e${i}', 'enrolled', 'claim-${i % 20}', 's${i}', ${i})`).join(', ');
      await pg.query('claims', `INSERT INTO webhook_events (id, type, device, serial, at) VALUES ${values}`);
      expect(await stores[0]!.outbox().fanOut(['http://127.0.0.1:9/'], Date.now(), 500)).toBe(60);
      const now = Date.now();
      const rounds = await Promise.all(Array.from({ length: 16 }, (_, i) => stores[i % 2]!.outbox().claim(`owner-${i}`, now, now + 60_000, 4)));
      const claimed = rounds.flat().map((d) => d.event.id);
      expect(claimed.length).toBe(20);
      expect(new Set(claimed).size).toBe(20);
      expect(claimed.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `e${i}`).sort());
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
