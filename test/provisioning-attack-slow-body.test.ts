import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProvisioningEnv, type ProvisioningEnv } from './harness/fleet-env.js';
import { postJson, request } from './harness/https-client.js';
import { makeCsr, newKey } from './harness/csr.js';
import { startPartialUpload, type PartialUpload } from './harness/partial-upload.js';
import { pollUntil } from './harness/poll.js';
import { sample } from './harness/broker-probe.js';
import { logLines } from './harness/cli.js';

// Issue 19 item 1: slow bodies must not take the issuance capacity. Anonymous clients send
// the headers of an enrollment and a few bytes of its body, then nothing: 70 connections
// from 127.0.0.2 and 10 each from 127.0.0.3-5, more than the 64 issuances in flight the
// service allows. Before the fix each was admitted before its body was read and held its
// place for up to 30 s, so every enrollment and every renewal answered 503 `overloaded`.
// Now bodies are read before admission under --body-timeout (default 5 s, then 408
// `request_timeout` and the connection closed) and one client may have 8 open at once.
describe('provisioning under a slow-body flood', () => {
  let env: ProvisioningEnv;
  beforeAll(async () => {
    env = await startProvisioningEnv();
  });
  afterAll(async () => {
    await env?.stop();
  });
  const metrics = async () => (await request(`${env.url}/metrics`, { ca: env.ca })).text();

  it('runs with the default bounds: bodies within 5 s, silence closed after 15 s', async () => {
    // Ready is this JSON log line (test/harness/cli.ts).
    expect(logLines(env.service.output(), 'provisioning listening')[0]).toMatchObject({ idleTimeoutMs: 15000, bodyTimeoutMs: 5000 });
  });

  it('renews over mTLS and enrolls from other addresses while slow uploads are held, then times the uploads out with 408', async () => {
    // A device enrolled before the attack, to renew during it.
    const deviceKey = newKey();
    const enrolled = await postJson(`${env.url}/v1/enroll`, { token: await env.token('renewing-device'), csr: await makeCsr(deviceKey) }, { ca: env.ca });
    expect(enrolled.status, enrolled.text()).toBe(201);
    const bystanderToken = await env.token('bystander');

    const body = Buffer.from(JSON.stringify({ token: 'tf_' + 'A'.repeat(32), csr: 'x'.repeat(2000) }));
    const attackers = [...Array.from({ length: 70 }, () => '127.0.0.2'), ...['127.0.0.3', '127.0.0.4', '127.0.0.5'].flatMap((a) => Array.from({ length: 10 }, () => a))];
    const uploads: PartialUpload[] = [];
    try {
      const opened = await Promise.allSettled(attackers.map((localAddress) => startPartialUpload(env.url, { ca: env.ca, path: '/v1/enroll', body, sentBytes: 20, localAddress })));
      for (const o of opened) if (o.status === 'fulfilled') uploads.push(o.value);
      expect(uploads).toHaveLength(attackers.length);
      // 8 per address are reading their bodies (4 addresses); the other 62 from 127.0.0.2 were refused at once.
      await pollUntil('the slow bodies to be read', metrics, (t) => sample(t, 'tlsfleet_provisioning_issuance_bodies_reading') === 32);
      const during = await metrics();
      expect(sample(during, 'tlsfleet_provisioning_issuance_in_flight')).toBe(0);
      expect(sample(during, 'tlsfleet_provisioning_issuance_shed_total', { reason: 'client_in_flight' })).toBe(62 + 3 * 2);

      const renewKey = newKey();
      const renewed = await postJson(`${env.url}/v1/renew`, { csr: await makeCsr(renewKey) }, { ca: env.ca, cert: enrolled.json().chain, key: deviceKey.privatePem });
      expect(renewed.status, renewed.text()).toBe(201);
      expect(new X509Certificate(renewed.json().certificate).subjectAltName).toBe('URI:spiffe://tlsfleet.local/device/renewing-device');

      const bystander = await postJson(`${env.url}/v1/enroll`, { token: bystanderToken, csr: await makeCsr(newKey()) }, { ca: env.ca, localAddress: '127.0.0.6' });
      expect(bystander.status, bystander.text()).toBe(201);
      // The flooding address itself is refused while its 8 uploads are open, with Retry-After.
      const sameAddress = await postJson(`${env.url}/v1/enroll`, { token: 'tf_' + 'B'.repeat(32), csr: 'x' }, { ca: env.ca, localAddress: '127.0.0.2' });
      expect(sameAddress.status, sameAddress.text()).toBe(429);
      expect(sameAddress.json().error.code).toBe('rate_limited');
      expect(Number(sameAddress.headers['retry-after'])).toBeGreaterThanOrEqual(1);

      // Every upload ends: the refused ones with 429 at once, the slow ones with 408 once the deadline passes.
      const answers = await Promise.all(uploads.map((u) => u.closed()));
      const statuses = answers.map((a) => a[0]?.status);
      expect(statuses.filter((s) => s === 408)).toHaveLength(32);
      expect(statuses.filter((s) => s === 429)).toHaveLength(attackers.length - 32);
      const timedOut = answers.find((a) => a[0]?.status === 408)![0]!;
      expect(JSON.parse(timedOut.body).error.code).toBe('request_timeout');
      expect(timedOut.headers.connection).toBe('close');
    } finally {
      for (const u of uploads) u.destroy();
    }
    const after = await metrics();
    expect(sample(after, 'tlsfleet_provisioning_connection_timeouts_total', { phase: 'body' })).toBe(32);
    expect(sample(after, 'tlsfleet_provisioning_issuance_bodies_reading')).toBe(0);
    expect(sample(after, 'tlsfleet_provisioning_enrollments_total', { result: 'issued' })).toBe(2);
    expect(sample(after, 'tlsfleet_provisioning_renewals_total', { result: 'issued' })).toBe(1);
    expect(env.service.output()).toMatch(/"reason":"body_timeout"/);
  });
});
