import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '@tlsfleet/common';
import { healthUrlOf, mintToken, startFleetEnv, type DeviceCredentials, type FleetEnv } from './harness/broker-env.js';
import { httpGet, inbox, metric, outputMatches, sample, tryConnect, within } from './harness/broker-probe.js';
import { logged, logLines, runCli, startService, type Service } from './harness/cli.js';
import { makeCsr, newKey } from './harness/csr.js';
import { request, postJson } from './harness/https-client.js';
import { foreignClientCertificate } from './harness/openssl-pki.js';
import { pollUntil } from './harness/poll.js';
import { tempDir } from './harness/temp-dir.js';

/** Every stdout line parsed as JSON; the test fails on the first that is not a JSON object. */
function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new Error(`not a JSON line on stdout: ${JSON.stringify(line)}`);
      }
      expect(parsed, line).toBeTypeOf('object');
      return parsed as Record<string, unknown>;
    });
}

/** pino's number for info. */
const INFO = 30;

/** The first info line `msg` of a service that carries every field of `fields`, waiting for it. */
async function infoLine(service: Service, msg: string, fields: Record<string, unknown>): Promise<Record<string, unknown>> {
  const line = await logLine(service, msg, fields);
  expect(line.level).toBe(INFO);
  return line;
}

/** The first log line `msg` of a service that carries every field of `fields`, waiting for it (at most 10 s). */
async function logLine(service: Service, msg: string, fields: Record<string, unknown>): Promise<Record<string, unknown>> {
  const find = () => logLines(service.output(), msg).find((l) => Object.entries(fields).every(([k, v]) => l[k] === v));
  const what = `a "${msg}" line with ${JSON.stringify(fields)}`;
  const line =
    find() ??
    (await within(
      new Promise<Record<string, unknown>>((resolve) => {
        // The harness's own listener, registered first, has appended the chunk already.
        const check = () => {
          const found = find();
          if (found === undefined) return;
          service.child.stdout!.off('data', check);
          resolve(found);
        };
        service.child.stdout!.on('data', check);
      }),
      10_000,
      `${what}; its lines:\n${service.output().split('\n').filter((l) => l.includes(msg)).join('\n')}`,
    ));
  return line;
}

describe('logs and metrics of provisioning and the broker', () => {
  let env: FleetEnv;
  let device: DeviceCredentials;
  let metricsUrl: string;

  beforeAll(async () => {
    env = await startFleetEnv({ provisioningArgs: ['--metrics-port', '0'] });
    device = await env.enroll('logged-device');
    metricsUrl = logged('provisioning listening', 'metricsUrl')(env.service.output()) ?? '';
  }, 60_000);
  afterAll(async () => {
    await env?.stop();
  });

  it('logs a refused connection without a client certificate at info, with the address and the TLS reason', async () => {
    const attempt = await tryConnect(env.brokerUrl, { ca: env.ca, clientId: 'anonymous' });
    expect(attempt.outcome).not.toBe('connected');
    const line = await infoLine(env.broker, 'TLS handshake refused', { stage: 'tls', reason: 'no_cert' });
    expect(line.address).toBe('127.0.0.1');
  });

  it('logs a certificate from a foreign CA refused at info as unknown_ca', async () => {
    const foreign = await foreignClientCertificate(env.dir, { uri: 'spiffe://tlsfleet.local/device/intruder', serialHex: '0badc0de', subject: '/CN=intruder' });
    const attempt = await tryConnect(env.brokerUrl, { ca: env.ca, cert: foreign.certPem, key: foreign.keyPem, clientId: 'intruder' });
    expect(attempt.outcome).not.toBe('connected');
    const line = await infoLine(env.broker, 'TLS handshake refused', { stage: 'tls', reason: 'unknown_ca' });
    expect(line.address).toBe('127.0.0.1');
  });

  it('logs a CONNECT with another clientId refused at info, with the identity, address and reason', async () => {
    const attempt = await tryConnect(env.brokerUrl, { ca: env.ca, cert: device.chain, key: device.key, clientId: 'someone-else' });
    expect(attempt.outcome).toBe('refused');
    const line = await infoLine(env.broker, 'connection refused', { reason: 'client_id_mismatch', client: 'someone-else' });
    expect(line).toMatchObject({ identity: 'logged-device', address: '127.0.0.1', stage: 'connect' });
  });

  it('logs an accepted connection at info with the identity, serial and address', async () => {
    const client = await env.connect(device);
    try {
      const line = await infoLine(env.broker, 'client connected', { client: 'logged-device' });
      expect(line).toMatchObject({ identity: 'logged-device', kind: 'device', serial: device.serial, address: '127.0.0.1' });
    } finally {
      await client.endAsync();
    }
  });

  it('logs each enrollment, renewal, revocation and admin request at info, with no secret in any line', async () => {
    const token = await mintToken(env, 'audited-device', 'device', 3600);
    const key = newKey();
    const enrolled = await postJson(`${env.url}/v1/enroll`, { token, csr: await makeCsr(key) }, { ca: env.ca });
    expect(enrolled.status).toBe(201);
    const { chain, serial } = enrolled.json() as { chain: string; serial: string };
    await infoLine(env.service, 'certificate issued', { operation: 'enroll', subject: 'audited-device', serial });

    const renewed = await postJson(`${env.url}/v1/renew`, { csr: await makeCsr(newKey()) }, { ca: env.ca, cert: chain, key: key.privatePem });
    expect(renewed.status).toBe(201);
    await infoLine(env.service, 'certificate issued', { operation: 'renew', subject: 'audited-device', serial: renewed.json().serial });

    const revoked = await postJson(`${env.url}/v1/devices/audited-device/revoke`, {}, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
    expect(revoked.status).toBe(200);
    await infoLine(env.service, 'device revoked', { subject: 'audited-device', by: 'admin-token' });
    const admin = await infoLine(env.service, 'admin request', { path: '/v1/devices/audited-device/revoke', method: 'POST' });
    expect(admin).toMatchObject({ by: 'admin-token', status: 200, address: '127.0.0.1' });
    // The token mint is an admin request too.
    await infoLine(env.service, 'admin request', { path: '/v1/tokens', method: 'POST', status: 201 });

    const wrong = await request(`${env.url}/v1/devices`, { ca: env.ca, headers: { authorization: 'Bearer not-the-admin-token' } });
    expect(wrong.status).toBe(403);
    // Refusals go through the rate-limited refusal log, at warn.
    const refused = await logLine(env.service, 'admin request refused', { status: 403, path: '/v1/devices' });
    expect(refused).toMatchObject({ level: 40, address: '127.0.0.1' });

    const everything = env.service.output() + env.broker.output();
    for (const secret of [token, env.adminToken, 'not-the-admin-token', key.privatePem.split('\n')[1]!, device.key.split('\n')[1]!]) {
      expect(everything).not.toContain(secret);
    }
    expect(everything).not.toMatch(/Bearer/i);
  });

  it('reports the build, CA and CRL expiry in provisioning metrics, the CA gauge at the real notAfter', async () => {
    const text = (await request(`${env.url}/metrics`, { ca: env.ca })).text();
    expect(sample(text, 'tlsfleet_build_info', { version: VERSION })).toBe(1);
    const intermediate = new X509Certificate(readFileSync(join(env.dataDir, 'intermediate-ca.pem')));
    const root = new X509Certificate(readFileSync(join(env.dataDir, 'root-ca.pem')));
    const labelsOf = (cert: X509Certificate, ca: string) => ({ ca, subject: /^CN=(.*)$/m.exec(cert.subject)![1]!, serial: cert.serialNumber.toLowerCase() });
    const expected = (cert: X509Certificate) => (Date.parse(cert.validTo) - Date.now()) / 1000;
    expect(Math.abs(sample(text, 'tlsfleet_provisioning_ca_expiry_seconds', labelsOf(intermediate, 'intermediate')) - expected(intermediate))).toBeLessThan(120);
    expect(Math.abs(sample(text, 'tlsfleet_provisioning_ca_expiry_seconds', labelsOf(root, 'root')) - expected(root))).toBeLessThan(120);
    const crlSeconds = sample(text, 'tlsfleet_provisioning_crl_expiry_seconds');
    expect(crlSeconds).toBeGreaterThan(0);
    expect(crlSeconds).toBeLessThanOrEqual(24 * 3600);
    expect(text).toMatch(/^# TYPE tlsfleet_provisioning_issuance_duration_seconds histogram$/m);
    expect(sample(text, 'tlsfleet_provisioning_enrollments_total', { result: 'issued' })).toBeGreaterThanOrEqual(1);
    expect(text).not.toMatch(/^tlsfleet_enrollments_total/m);
  });

  it('serves the same metrics on --metrics-port, bound to 127.0.0.1, and nothing else there', async () => {
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const res = await httpGet(metricsUrl);
    expect(res.status).toBe(200);
    expect(sample(res.body, 'tlsfleet_build_info', { version: VERSION })).toBe(1);
    expect(sample(res.body, 'tlsfleet_provisioning_enrollments_total', { result: 'issued' })).toBeGreaterThanOrEqual(1);
    expect((await httpGet(metricsUrl.replace('/metrics', '/v1/devices'))).status).toBe(404);
  });

  it('reports the build, trust bundle and CRL expiry and CONNECT→CONNACK and delivery latency in broker metrics', async () => {
    const health = healthUrlOf(env.broker);
    expect(await metric(health, 'tlsfleet_build_info', { version: VERSION })).toBe(1);
    const root = new X509Certificate(readFileSync(join(env.dataDir, 'root-ca.pem')));
    const rootSeconds = await metric(health, 'tlsfleet_broker_ca_expiry_seconds', { ca: 'root', subject: /^CN=(.*)$/m.exec(root.subject)![1]!, serial: root.serialNumber.toLowerCase() });
    expect(Math.abs(rootSeconds - (Date.parse(root.validTo) - Date.now()) / 1000)).toBeLessThan(120);
    const crlSeconds = await pollUntil('the broker to load the CRL', () => metric(health, 'tlsfleet_broker_crl_expiry_seconds'), (v) => v > 0);
    expect(crlSeconds).toBeLessThanOrEqual(24 * 3600);

    const connectsBefore = await metric(health, 'tlsfleet_broker_connect_duration_seconds_count');
    const client = await env.connect(device);
    try {
      expect(await metric(health, 'tlsfleet_broker_connect_duration_seconds_count')).toBe(connectsBefore + 1);
      // One publish in 64 is timed to its delivery, whether the relay or Aedes delivers it.
      await client.subscribeAsync('devices/logged-device/#', { qos: 1 });
      const received = inbox(client);
      for (let i = 0; i < 130; i++) await client.publishAsync('devices/logged-device/telemetry', `reading ${i}`, { qos: 1 });
      await within(received.next((m) => m.payload === 'reading 129'), 10_000, 'the last of 130 messages back');
      const deliveries = await metric(health, 'tlsfleet_broker_delivery_duration_seconds_count');
      expect(deliveries).toBeGreaterThanOrEqual(2);
      const sum = await metric(health, 'tlsfleet_broker_delivery_duration_seconds_sum');
      expect(sum).toBeGreaterThan(0);
      expect(sum / deliveries).toBeLessThan(10);
    } finally {
      await client.endAsync();
    }
  });

  it('lists every tlsfleet metric either service exports in docs/reference/metrics.md', async () => {
    const doc = readFileSync(new URL('../docs/reference/metrics.md', import.meta.url), 'utf8');
    const exported = [(await request(`${env.url}/metrics`, { ca: env.ca })).text(), (await httpGet(`${healthUrlOf(env.broker)}/metrics`)).body]
      .flatMap((text) => [...text.matchAll(/^# TYPE (tlsfleet_\w+) /gm)].map((m) => m[1]!));
    expect(exported.length).toBeGreaterThan(40);
    expect(exported.filter((name) => !doc.includes(`\`${name}\``))).toEqual([]);
  });

  it('writes nothing but JSON lines to stdout, from either service', () => {
    for (const service of [env.service, env.broker]) {
      const lines = jsonLines(service.stdout());
      expect(lines.length).toBeGreaterThan(3);
      for (const line of lines) expect(line).toMatchObject({ level: expect.any(Number), msg: expect.any(String) });
    }
  });
});

describe('provisioning: certificates expiring soon', () => {
  it('counts devices whose current certificate expires within 24 h and 7 d, not revoked or longer-lived ones', async () => {
    const env = await startFleetEnv();
    try {
      await env.enroll('short-lived', { certTtl: '1h' });
      await env.enroll('three-days', { certTtl: '3d' });
      await env.enroll('long-lived', { certTtl: '30d' });
      await env.enroll('short-revoked', { certTtl: '1h' });
      const revoked = await postJson(`${env.url}/v1/devices/short-revoked/revoke`, {}, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
      expect(revoked.status).toBe(200);
      const text = (await request(`${env.url}/metrics`, { ca: env.ca })).text();
      expect(sample(text, 'tlsfleet_provisioning_certificates_expiring', { within: '24h' })).toBe(1);
      expect(sample(text, 'tlsfleet_provisioning_certificates_expiring', { within: '7d' })).toBe(2);
    } finally {
      await env.stop();
    }
  }, 60_000);
});

describe('tlsfleet dev', () => {
  it('writes JSON lines only to stdout, the addresses in its "dev ready" line', async () => {
    const dir = tempDir('tlsfleet-dev-');
    try {
      const dev = await startService(['dev', '--data-dir', join(dir.path, 'data'), '--port', '0', '--broker-port', '0', '--health-port', '0'], logged('dev ready', 'broker'));
      try {
        expect(dev.url).toMatch(/^mqtts:\/\/localhost:\d+$/);
        await outputMatches(dev, /"msg":"dev ready"/);
        const lines = jsonLines(dev.stdout());
        expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['provisioning listening', 'broker listening', 'dev ready']));
      } finally {
        expect(await dev.stop()).toBe(0);
      }
      expect(jsonLines(dev.stdout()).length).toBeGreaterThan(3);
    } finally {
      dir.cleanup();
    }
  }, 60_000);

  it('prints human-readable lines with --log-format pretty, and refuses an unknown format or level', async () => {
    const dir = tempDir('tlsfleet-pretty-');
    try {
      const dataDir = join(dir.path, 'data');
      expect((await runCli(['init', '--data-dir', dataDir])).code).toBe(0);
      const pretty = await startService(['provisioning', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0', '--log-format', 'pretty'], /provisioning listening/);
      try {
        expect(pretty.stdout()).toMatch(/INFO.*provisioning listening/);
        expect(pretty.stdout().split('\n')[0]).not.toMatch(/^\{/);
      } finally {
        await pretty.stop();
      }
      const badFormat = await runCli(['provisioning', '--data-dir', dataDir, '--log-format', 'xml']);
      expect(badFormat.code).toBe(2);
      expect(badFormat.stderr).toContain('--log-format');
      const badLevel = await runCli(['broker', '--data-dir', dataDir, '--log-level', 'loud']);
      expect(badLevel.code).toBe(2);
      expect(badLevel.stderr).toContain('--log-level');
    } finally {
      dir.cleanup();
    }
  }, 60_000);
});
