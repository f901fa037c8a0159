import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { createDevice, type Device, type DeviceError } from '@tlsfleet/device-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken, startFleetEnv, type FleetEnv } from './harness/broker-env.js';
import { makeCsr, newKey } from './harness/csr.js';
import { nextEvent, startConnected } from './harness/device-env.js';
import { json, startReceiver, type Receiver } from './harness/hook-receiver.js';
import { postJson, type HttpAnswer } from './harness/https-client.js';

// Issue 23, renewal herds: after a mass event every device renews at once. The 503s the
// service answers while its issuance places are full carry a Retry-After that grows with
// the backlog at the measured issuance rate, so the herd comes back spread out; the SDK
// waits as told.
//
// The places are held by two enrollments whose enrollment hook has not answered yet (the
// test's receiver), so every renewal meanwhile is refused, whatever the host's speed; the
// hook answers the herd's own enrollments after 250 ms, which sets the issuance time the
// service measures (about 8 a second on its 2 places) and so the size of the spread.

const HERD = 48;
const HOOK_MS = 250;

interface Held {
  id: string;
  chain: string;
  key: string;
}

interface Told {
  id: string;
  status: number;
  code?: string;
  retryAfter?: number;
  at: number;
}

describe('renewal herd: 503 overloaded spreads the retries', () => {
  let env: FleetEnv;
  let hook: Receiver;
  let mode: 'fast' | 'slow' | 'hold' = 'fast';
  const held: ServerResponse[] = [];
  const devices: Device[] = [];

  beforeAll(async () => {
    hook = await startReceiver((_r, res) => {
      if (mode === 'hold') held.push(res);
      else if (mode === 'slow') setTimeout(() => json(res, 200, { allow: true }), HOOK_MS);
      else json(res, 200, { allow: true });
    });
    env = await startFleetEnv({
      provisioningArgs: ['--max-inflight', '2', '--renewal-reserve', '0', '--max-inflight-per-client', '0', '--client-rate', '0', '--enroll-hook', hook.url],
    });
  });
  afterAll(async () => {
    for (const res of held.splice(0)) res.destroy();
    for (const d of devices) await d.close();
    await env?.stop();
    await hook?.close();
  });

  const enroll = async (id: string, ttlSeconds = 3600): Promise<HttpAnswer & { key: string }> => {
    const key = newKey();
    const res = await postJson(`${env.url}/v1/enroll`, { token: await mintToken(env, id, 'device', ttlSeconds), csr: await makeCsr(key) }, { ca: env.ca });
    return Object.assign(res, { key: key.privatePem });
  };
  const renew = async (h: Held, csr: string): Promise<Told> => {
    const res = await postJson(`${env.url}/v1/renew`, { csr }, { ca: env.ca, cert: h.chain, key: h.key });
    const header = res.headers['retry-after'];
    return {
      id: h.id,
      status: res.status,
      ...(res.status >= 400 ? { code: res.json().error.code as string } : {}),
      ...(header === undefined ? {} : { retryAfter: Number(header) }),
      at: Date.now(),
    };
  };

  it('answers a renewal herd 503 with Retry-After growing with the backlog, the herd renews as told, and the SDK waits as told', async () => {
    // A device on the SDK with a 2-minute certificate, closed until the herd is refused.
    const stateDir = join(env.dir, 'devices', 'herd-sdk');
    const options = {
      stateDir,
      provisioningUrl: env.url,
      brokerUrl: env.brokerUrl,
      bootstrapCa: env.ca,
      inBandRenewal: false,
      random: () => 0, // no SDK jitter: it renews exactly at renewAfter
      reconnect: { initialDelayMs: 200, maxDelayMs: 2000 },
      // Its own backoff is at most 100 ms: a longer wait comes from Retry-After.
      renewalRetry: { initialDelayMs: 50, maxDelayMs: 100 },
    };
    const first = createDevice({ ...options, token: await mintToken(env, 'herd-sdk', 'device', 120) });
    await startConnected(first);
    const { renewAfter, notAfter, serial } = first.identity!;
    await first.close();

    // The herd enrolls with the slow hook: the service measures issuances of about 250 ms.
    mode = 'slow';
    const herd: Held[] = [];
    for (let i = 0; i < HERD; i += 2) {
      const pair = await Promise.all([0, 1].map((j) => enroll(`herd-${i + j}`)));
      for (const [j, res] of pair.entries()) {
        expect(res.status, res.text()).toBe(201);
        herd.push({ id: `herd-${i + j}`, chain: res.json().chain, key: res.key });
      }
    }
    const csrs = await Promise.all(herd.map(() => makeCsr(newKey())));

    // Both places taken by enrollments waiting on the hook.
    mode = 'hold';
    const holding = [enroll('holder-1'), enroll('holder-2')];
    while (held.length < 2) await hook.next();

    // All refused: the places stay held for the hook's 5 s, far longer than this takes.
    const told = await Promise.all(herd.map((h, i) => renew(h, csrs[i]!)));
    for (const t of told) {
      expect(t.status, t.id).toBe(503);
      expect(t.code).toBe('overloaded');
      expect(Number.isInteger(t.retryAfter)).toBe(true);
      expect(t.retryAfter).toBeGreaterThanOrEqual(1);
      expect(t.retryAfter).toBeLessThanOrEqual(60);
    }
    // Not all at the same second: spread, later for those refused later (the order they came back in).
    const inOrder = [...told].sort((a, b) => a.at - b.at).map((t) => t.retryAfter!);
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const quarter = HERD / 4;
    expect(new Set(inOrder).size).toBeGreaterThanOrEqual(4);
    expect(mean(inOrder.slice(-quarter))).toBeGreaterThan(mean(inOrder.slice(0, quarter)) + 3);
    expect(Math.max(...inOrder)).toBeGreaterThanOrEqual(6);

    // The SDK device wakes past its renewAfter (its clock says so), is refused behind the herd.
    const offset = Date.parse(renewAfter) - Date.now() + 500;
    const sdk = createDevice({ ...options, now: () => Date.now() + offset });
    devices.push(sdk);
    const errors: { at: number; err: DeviceError }[] = [];
    sdk.on('error', (err) => errors.push({ at: Date.now(), err }));
    const refused = nextEvent(sdk, 'error', (err) => err.code === 'overloaded');
    const renewed = nextEvent(sdk, 'renewed');
    await sdk.start();
    let refusedFirst = false;
    const [overloaded] = await Promise.race([
      refused.then((args) => {
        refusedFirst = true;
        return args;
      }),
      renewed.then(() => {
        if (!refusedFirst) throw new Error('the SDK renewed while the places were held: the hold ended first (enroll hook timeout, 5 s)');
        return undefined as never;
      }),
    ]);
    const refusedAt = Date.now();
    expect(overloaded.retryAfterMs).toBeGreaterThanOrEqual(Math.max(...inOrder) * 1000 - 2000);

    // The mass event ends: the holders get their answer and the places free up.
    mode = 'fast';
    for (const res of held.splice(0)) json(res, 200, { allow: true });
    for (const res of await Promise.all(holding)) expect(res.status).toBe(201);

    // The herd comes back as told; a few may be told again; every device renews.
    const again = await Promise.all(
      told.map(async (t, i) => {
        let last = t;
        const sent: number[] = [];
        for (let attempt = 0; attempt < 10 && last.status === 503; attempt++) {
          await delay(Math.max(0, last.at + last.retryAfter! * 1000 - Date.now()));
          sent.push(Date.now());
          last = await renew(herd[i]!, csrs[i]!);
        }
        return { last, sent, told: t };
      }),
    );
    for (const a of again) expect(a.last.status, a.last.id).toBe(201);
    // They came back over seconds, not at once.
    const firstRetries = again.map((a) => a.sent[0]!);
    expect(Math.max(...firstRetries) - Math.min(...firstRetries)).toBeGreaterThan(3000);

    // The SDK renewed no earlier than Retry-After said, and its next renewAfter is its new certificate's own.
    const [summary] = await renewed;
    const renewedAt = Date.now();
    expect(renewedAt - refusedAt).toBeGreaterThanOrEqual(overloaded.retryAfterMs! - 5);
    const lastRefusal = errors.filter((e) => e.err.code === 'overloaded').at(-1)!;
    expect(renewedAt - lastRefusal.at).toBeGreaterThanOrEqual(lastRefusal.err.retryAfterMs! - 5);
    expect(summary.serial).not.toBe(serial);
    expect(Date.parse(summary.renewAfter)).toBeLessThan(Date.parse(summary.notAfter));
    expect(Date.parse(notAfter)).toBeGreaterThan(renewedAt);
  });
});
