import { createHmac, timingSafeEqual } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, initDataDir, startProvisioning, type RunningProvisioning } from '@tlsfleet/provisioning';
import { makeCsr, newKey } from './harness/csr.js';
import { postJson, request } from './harness/https-client.js';
import { json, startReceiver, type Answer, type Received, type Receiver } from './harness/hook-receiver.js';
import { runCli } from './harness/cli.js';
import { tempDir } from './harness/temp-dir.js';
import { pollUntil } from './harness/poll.js';
import { Validator } from '@seriousme/openapi-schema-validator';
import { ContractChecker, OPENAPI_FILE, type OpenApiDocument } from './harness/openapi.js';

const SECRET = 'webhook-test-secret';
/** Fast retries for tests; the defaults (1 s doubling to 5 min) are the same code with other numbers. */
const FAST = { pollMs: 50, backoffBaseMs: 20, backoffCapMs: 200 };

interface Event {
  id: string;
  type: string;
  device: string;
  serial: string;
  notAfter?: string;
  at: string;
}

function verified(r: Received): Event {
  const header = String(r.headers['x-tlsfleet-signature']);
  const expected = `sha256=${createHmac('sha256', SECRET).update(r.raw).digest('hex')}`;
  expect(header.length).toBe(expected.length);
  expect(timingSafeEqual(Buffer.from(header), Buffer.from(expected))).toBe(true);
  return JSON.parse(r.raw) as Event;
}

/** Waits on the receiver until `done` holds for what it got, one request at a time (bounded). */
async function until(hook: Receiver, done: () => boolean, most = 400): Promise<void> {
  for (let i = 0; i < most && !done(); i++) await hook.next();
  expect(done()).toBe(true);
}

describe('provisioning --webhook (SQLite)', () => {
  const tmp = tempDir('tlsfleet-webhook-');
  const dataDir = join(tmp.path, 'data');
  let ca: string;
  let admin: string;
  let checker: ContractChecker;
  beforeAll(async () => {
    const validator = new Validator();
    await validator.validate(OPENAPI_FILE);
    checker = new ContractChecker(validator.resolveRefs() as unknown as OpenApiDocument);
    await initDataDir({ dataDir });
    ca = readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8');
    admin = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  });
  afterAll(() => tmp.cleanup());

  const start = (url: string, signed = true) =>
    startProvisioning({ dataDir, port: 0, logger: createLogger('provisioning', 'silent'), webhooks: { urls: [url], ...(signed ? { secret: SECRET } : {}), ...FAST } });

  async function enroll(svc: RunningProvisioning, device: string): Promise<{ cert: string; key: string; serial: string }> {
    const { token } = await svc.authority.mintToken({ subject: device, createdBy: 'test' });
    const key = newKey();
    const res = await postJson(`${svc.url}/v1/enroll`, { token, csr: await makeCsr(key) }, { ca });
    expect(res.status).toBe(201);
    return { cert: res.json().certificate, key: key.privatePem, serial: res.json().serial };
  }
  async function renew(svc: RunningProvisioning, d: { cert: string; key: string }): Promise<string> {
    const res = await postJson(`${svc.url}/v1/renew`, { csr: await makeCsr(newKey()) }, { ca, cert: d.cert, key: d.key });
    expect(res.status).toBe(201);
    return res.json().serial;
  }
  const revoke = async (svc: RunningProvisioning, device: string) =>
    expect((await postJson(`${svc.url}/v1/devices/${device}/revoke`, {}, { ca, headers: { authorization: `Bearer ${admin}` } })).status).toBe(200);
  /** GET /v1/webhooks/deliveries, each answer checked against docs/reference/openapi.yaml. */
  async function deliveries(svc: RunningProvisioning, status: string): Promise<Record<string, unknown>[]> {
    const path = `/v1/webhooks/deliveries?status=${status}`;
    const res = await request(`${svc.url}${path}`, { ca, headers: { authorization: `Bearer ${admin}` } });
    expect(checker.problems('GET', path, res)).toEqual([]);
    return res.json().items;
  }

  it('signs each event, retries a failing receiver with backoff and keeps the order per device once it recovers', async () => {
    let failing = true;
    const answer: Answer = (_r, res) => json(res, failing ? 503 : 200, {});
    const hook = await startReceiver(answer);
    const svc = await start(hook.url);
    try {
      const a = await enroll(svc, 'wh-a');
      const b = await enroll(svc, 'wh-b');
      const a2 = await renew(svc, a);
      await revoke(svc, 'wh-a');
      // Failing: every delivery is retried; the admin API shows them with their last error.
      await until(hook, () => hook.received.length >= 6);
      const listed = await deliveries(svc, 'failing');
      expect(listed.length).toBeGreaterThan(0);
      expect(listed[0]).toMatchObject({ device: expect.stringMatching(/^wh-/), lastStatus: 503, attempts: expect.any(Number) });
      // Only the oldest event of each device is tried while it fails.
      expect(new Set(hook.received.map((r) => `${verified(r).device}:${verified(r).type}`))).toEqual(new Set(['wh-a:enrolled', 'wh-b:enrolled']));
      const failedSoFar = hook.received.length;
      failing = false;
      const ok = () => hook.received.slice(failedSoFar);
      // Revoking wh-a revokes both its live certificates: five events in all.
      await until(hook, () => ok().length >= 5);
      const events = ok().map(verified);
      const ofA = events.filter((e) => e.device === 'wh-a');
      expect(ofA.map((e) => e.type)).toEqual(['enrolled', 'renewed', 'revoked', 'revoked']);
      expect(ofA.slice(0, 2).map((e) => e.serial)).toEqual([a.serial, a2]);
      expect(ofA.slice(2).map((e) => e.serial).sort()).toEqual([a.serial, a2].sort());
      expect(events.filter((e) => e.device === 'wh-b').map((e) => [e.type, e.serial])).toEqual([['enrolled', b.serial]]);
      for (const e of events) {
        expect(Object.keys(e).sort()).toEqual(e.type === 'revoked' ? ['at', 'device', 'id', 'serial', 'type'] : ['at', 'device', 'id', 'notAfter', 'serial', 'type']);
        expect(Number.isNaN(Date.parse(e.at))).toBe(false);
      }
      expect(new Set(events.map((e) => e.id)).size).toBe(5);
      // The receiver answered the last one; the service records it just after.
      await pollUntil('five deliveries recorded', () => deliveries(svc, 'delivered'), (items) => items.length >= 5, 200);
      const metrics = (await request(`${svc.url}/metrics`, { ca })).text();
      expect(metrics).toMatch(/tlsfleet_provisioning_webhook_deliveries_total\{result="status"\} [1-9]/);
      expect(metrics).toMatch(/tlsfleet_provisioning_webhook_deliveries_total\{result="delivered"\} 5/);
      expect(await deliveries(svc, 'failing')).toEqual([]);
      expect((await deliveries(svc, 'delivered')).length).toBe(5);
    } finally {
      await svc.close(0);
      await hook.close();
    }
  });

  it('resumes after a restart mid-delivery: the event interrupted is delivered by the next process', async () => {
    let hold = true;
    const held: (() => void)[] = [];
    const hook = await startReceiver((_r, res) => (hold ? held.push(() => json(res, 200, {})) : json(res, 200, {})));
    let svc = await start(hook.url, false);
    try {
      await enroll(svc, 'wh-restart');
      await until(hook, () => hook.received.length >= 1);
      const first = hook.received[0]!;
      // No secret: no signature header.
      expect(first.headers['x-tlsfleet-signature']).toBeUndefined();
      const id = (JSON.parse(first.raw) as Event).id;
      await svc.close(0);
      hold = false;
      svc = await start(hook.url, false);
      await until(hook, () => hook.received.length >= 2);
      const again = hook.received[1]!;
      expect((JSON.parse(again.raw) as Event).id).toBe(id);
      const delivered = await pollUntil('the interrupted event delivered', () => deliveries(svc, 'delivered'), (items) => items.some((d) => d.eventId === id), 200);
      expect(delivered.find((d) => d.eventId === id)).toMatchObject({ device: 'wh-restart', type: 'enrolled' });
    } finally {
      for (const release of held) release();
      await svc.close(0);
      await hook.close();
    }
  });

  it('writes events for a revocation made with the CLI against the data dir, delivered by the running service', async () => {
    const hook = await startReceiver((_r, res) => json(res, 204, ''));
    const svc = await start(hook.url);
    try {
      const d = await enroll(svc, 'wh-cli');
      await until(hook, () => hook.received.length >= 1);
      const r = await runCli(['revoke', '--data-dir', dataDir, '--device', 'wh-cli']);
      expect(r.code).toBe(0);
      await until(hook, () => hook.received.some((x) => verified(x).type === 'revoked'));
      expect(verified(hook.received.at(-1)!)).toMatchObject({ type: 'revoked', device: 'wh-cli', serial: d.serial });
    } finally {
      await svc.close(0);
      await hook.close();
    }
  });

  it('refuses a secret file others can read, and plain http to another host', async () => {
    const secretFile = join(tmp.path, 'secret');
    writeFileSync(secretFile, SECRET);
    chmodSync(secretFile, 0o644);
    const open = await runCli(['provisioning', '--data-dir', dataDir, '--port', '0', '--webhook', 'http://127.0.0.1:9/', '--webhook-secret-file', secretFile]);
    expect(open.code).not.toBe(0);
    expect(open.stderr).toMatch(/webhook-secret-file .*readable by group or others/);
    const remote = await runCli(['provisioning', '--data-dir', dataDir, '--port', '0', '--webhook', 'http://192.0.2.1/']);
    expect(remote.code).not.toBe(0);
    expect(remote.stderr).toMatch(/loopback/);
  });
});
