import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IClientOptions, MqttClient } from 'mqtt';
import { WebSocket } from 'ws';
import { pemCertificates, derToPem } from '@tlsfleet/common';
import { startBrokerProcess, startFleetEnv, wssUrlOf, type DeviceCredentials, type FleetEnv } from './harness/broker-env.js';
import { closedAt, countMatches, grantedQos, inbox, metric, metricUntil, outputMatches, tryConnect, within, type Attempt } from './harness/broker-probe.js';
import { runCli, type Service } from './harness/cli.js';
import { expiredDeviceCertificate } from './harness/expired-cert.js';
import { startNginx, type Nginx } from './harness/nginx.js';
import { foreignClientCertificate } from './harness/openssl-pki.js';

/** SUBACK return code 0x80 "Failure", as mqtt.js reports it in `granted[].qos`. */
const SUBACK_FAILURE = 128;
/** CONNACK return code 5 "Connection refused, not authorized" (MQTT 3.1.1 §3.2.2.3). */
const NOT_AUTHORIZED = 5;
/** nginx's upstream connections come from here (proxy_bind); the test's own from 127.0.0.1. */
const PROXY_ADDRESS = '127.0.0.2';
const REFUSALS = 'tlsfleet_broker_websocket_refusals_total';

/** The leaf of a chain, URL-encoded as nginx's $ssl_client_escaped_cert. */
const escapedLeaf = (chainPem: string) => encodeURIComponent(derToPem(pemCertificates(chainPem)[0] as Buffer, 'CERTIFICATE'));
/**
 * One WebSocket upgrade straight to a broker's ws port, with our own headers and source
 * address and no client certificate: 'open', or the HTTP status it was refused with.
 */
async function upgrade(url: string, ca: string, headers: Record<string, string>, localAddress: string): Promise<number | 'open' | string> {
  const ws = new WebSocket(url, ['mqtt'], { ca, headers, localAddress });
  const result = await new Promise<number | 'open' | string>((resolve) => {
    ws.once('open', () => resolve('open'));
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', (err) => resolve(err.message));
  });
  ws.on('error', () => undefined);
  ws.terminate();
  return result;
}

describe('forwarded client certificates from a TLS-terminating nginx (--ws-forwarded-cert nginx)', () => {
  let env: FleetEnv;
  let nginx: Nginx;
  let viaNginx: string;
  let direct: string;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    env = await startFleetEnv({ brokerArgs: ['--ws-port', '0', '--ws-forwarded-cert', 'nginx', '--trusted-proxy', `${PROXY_ADDRESS}/32`] });
    direct = wssUrlOf(env.broker);
    nginx = await startNginx({
      dir: join(env.dir, 'nginx'),
      backendPort: Number(new URL(direct).port),
      caFile: env.caFile,
      certFile: join(env.dataDir, 'broker.pem'),
      keyFile: join(env.dataDir, 'broker.key'),
    });
    viaNginx = `wss://127.0.0.1:${nginx.port}/mqtt`;
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await nginx?.stop();
    await env?.stop();
  });

  const mtls = (creds: DeviceCredentials, opts: IClientOptions = {}): IClientOptions => ({ clientId: creds.id, cert: creds.chain, key: creds.key, ca: env.ca, ...opts });
  async function attempt(url: string, opts: IClientOptions): Promise<Attempt> {
    const a = await tryConnect(url, { ca: env.ca, ...opts });
    clients.push(a.client);
    return a;
  }
  async function open(url: string, opts: IClientOptions): Promise<MqttClient> {
    const a = await attempt(url, opts);
    if (a.outcome !== 'connected') throw new Error(`expected a session, got ${a.outcome} ${String(a.code)}`);
    return a.client;
  }
  const refusals = (reason: string) => metric(env.healthUrl, REFUSALS, { reason });

  it('lets a device connect through nginx and publish and receive on its own topics, logged with its own address', async () => {
    const dev = await env.enroll('fwd-own');
    const c = await open(viaNginx, mtls(dev));
    const box = inbox(c);
    expect(await grantedQos(c, 'devices/fwd-own/#')).toBe(1);
    await c.publishAsync('devices/fwd-own/telemetry', 'through nginx', { qos: 1 });
    expect((await box.next((m) => m.topic === 'devices/fwd-own/telemetry')).payload).toBe('through nginx');
    // The address nginx appended to X-Forwarded-For (the device's), not nginx's 127.0.0.2.
    await within(outputMatches(env.broker, /"client":"fwd-own","address":"127\.0\.0\.1"/), 5000, 'client connected log line');
  });

  it('refuses a foreign subscription with SUBACK 0x80 and a spoofed clientId with CONNACK 5', async () => {
    const dev = await env.enroll('fwd-nosy');
    const c = await open(viaNginx, mtls(dev));
    expect(await grantedQos(c, 'devices/fwd-own/#')).toBe(SUBACK_FAILURE);
    expect(await grantedQos(c, '#')).toBe(SUBACK_FAILURE);
    const spoof = await attempt(viaNginx, mtls(dev, { clientId: 'fwd-own' }));
    expect(spoof.outcome).toBe('refused');
    expect(spoof.code).toBe(NOT_AUTHORIZED);
  });

  it('gives a client that sends its own X-SSL-Client-Cert through nginx its own identity, not the forged one', async () => {
    const victim = await env.enroll('fwd-victim');
    const forger = await env.enroll('fwd-forger');
    const forged = { wsOptions: { headers: { 'X-SSL-Client-Cert': escapedLeaf(victim.chain) } } };
    const asVictim = await attempt(viaNginx, mtls(forger, { clientId: victim.id, ...forged }));
    expect(asVictim.outcome).toBe('refused');
    expect(asVictim.code).toBe(NOT_AUTHORIZED);
    const asItself = await open(viaNginx, mtls(forger, forged));
    expect(await grantedQos(asItself, 'devices/fwd-forger/#')).toBe(1);
    expect(await grantedQos(asItself, 'devices/fwd-victim/#')).toBe(SUBACK_FAILURE);
  });

  it('refuses with 403 a direct upgrade from an untrusted address even with a valid device certificate in the header', async () => {
    const dev = await env.enroll('fwd-direct');
    const before = await refusals('untrusted_proxy');
    expect(await upgrade(direct, env.ca, { 'X-SSL-Client-Cert': escapedLeaf(dev.chain) }, '127.0.0.1')).toBe(403);
    await metricUntil(env.healthUrl, REFUSALS, { reason: 'untrusted_proxy' }, (v) => v === before + 1);
    // The same header from the trusted address is accepted: the address alone made the difference.
    expect(await upgrade(direct, env.ca, { 'X-SSL-Client-Cert': escapedLeaf(dev.chain) }, PROXY_ADDRESS)).toBe('open');
  });

  describe('from the trusted address, refuses with 401', () => {
    const cases: [string, string, () => Promise<Record<string, string>>][] = [
      ['a look-alike certificate from another CA', 'unknown_ca', async () => {
        const foreign = await foreignClientCertificate(join(env.dir), { uri: 'spiffe://tlsfleet.local/device/fwd-lookalike', serialHex: '5EC0DE', subject: 'fwd-lookalike' });
        return { 'X-SSL-Client-Cert': encodeURIComponent(foreign.certPem) };
      }],
      ['an expired certificate from our own intermediate', 'expired', async () => ({ 'X-SSL-Client-Cert': encodeURIComponent(await expiredDeviceCertificate(env.dataDir, 'fwd-expired')) })],
      ['a garbage header', 'malformed', async () => ({ 'X-SSL-Client-Cert': '%%%not-a-certificate' })],
      ['no header', 'no_header', async () => ({})],
      ['a header over 16 KiB', 'oversized', async () => ({ 'X-SSL-Client-Cert': 'A'.repeat(16 * 1024 + 1) })],
      ['a certificate that does not parse', 'bad_certificate', async () => ({ 'X-SSL-Client-Cert': encodeURIComponent('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n') })],
    ];
    it.each(cases)('%s (%s)', async (_name, reason, headers) => {
      const before = await refusals(reason);
      expect(await upgrade(direct, env.ca, await headers(), PROXY_ADDRESS)).toBe(401);
      await metricUntil(env.healthUrl, REFUSALS, { reason }, (v) => v === before + 1);
    });
  });

  it('refuses a revoked device at CONNECT and closes its live forwarded session within 10 s of tlsfleet revoke', async () => {
    const dev = await env.enroll('fwd-revoked');
    const c = await open(viaNginx, mtls(dev));
    const closed = closedAt(c);
    const revokedAt = Date.now();
    const r = await runCli(['revoke', '--data-dir', env.dataDir, '--device', dev.id]);
    expect(r.code).toBe(0);
    expect((await within(closed, 10_000, 'revoked session close')) - revokedAt).toBeLessThan(10_000);
    const again = await attempt(viaNginx, mtls(dev));
    expect(again.outcome).toBe('refused');
    expect(again.code).toBe(NOT_AUTHORIZED);
    await metricUntil(env.healthUrl, 'tlsfleet_broker_auth_failures_total', { reason: 'revoked' }, (v) => v >= 1);
  }, 30_000);

  it('closes a forwarded session at its certificate\'s notAfter', async () => {
    const dev = await env.enroll('fwd-expiring', { certTtl: '8s' });
    const notAfterMs = Date.parse(new X509Certificate(dev.chain).validTo);
    const c = await open(viaNginx, mtls(dev));
    const closed = await within(closedAt(c), Math.max(0, notAfterMs - Date.now()) + 3000, 'expired session close');
    expect(closed).toBeGreaterThanOrEqual(notAfterMs - 1000);
  }, 30_000);

  it('re-verifies against the current trust bundle: without the intermediate in it, a valid forwarded leaf is refused until it is back', async () => {
    const dev = await env.enroll('fwd-bundle');
    const header = { 'X-SSL-Client-Cert': escapedLeaf(dev.chain) };
    const bundleFile = env.caFile;
    const full = readFileSync(bundleFile, 'utf8');
    const rootOnly = derToPem(pemCertificates(full)[0] as Buffer, 'CERTIFICATE');
    const reloaded = /TLS material reloaded/;
    try {
      const seen = countMatches(env.broker.output(), reloaded);
      writeFileSync(bundleFile, rootOnly);
      await within(outputMatches(env.broker, reloaded, seen), 10_000, 'bundle reload');
      const before = await refusals('unknown_ca');
      expect(await upgrade(direct, env.ca, header, PROXY_ADDRESS)).toBe(401);
      await metricUntil(env.healthUrl, REFUSALS, { reason: 'unknown_ca' }, (v) => v === before + 1);
    } finally {
      const seen = countMatches(env.broker.output(), reloaded);
      writeFileSync(bundleFile, full);
      await within(outputMatches(env.broker, reloaded, seen), 10_000, 'bundle restore');
    }
    expect(await upgrade(direct, env.ca, header, PROXY_ADDRESS)).toBe('open');
  }, 30_000);

  describe('Envoy (--ws-forwarded-cert envoy) on the same data dir', () => {
    let envoyBroker: Service;
    let envoyDirect: string;
    beforeAll(async () => {
      envoyBroker = await startBrokerProcess(env.dataDir, ['--ws-port', '0', '--ws-forwarded-cert', 'envoy', '--trusted-proxy', PROXY_ADDRESS]);
      envoyDirect = wssUrlOf(envoyBroker);
    });
    afterAll(async () => {
      await envoyBroker?.stop();
    });
    const xfcc = (creds: DeviceCredentials) => `By=spiffe://tlsfleet.local/service/envoy;Hash=0f0f;Cert="${escapedLeaf(creds.chain)}";URI=spiffe://tlsfleet.local/device/${creds.id}`;

    it('accepts the one-element XFCC from the trusted address: the device publishes on its own topic', async () => {
      const dev = await env.enroll('fwd-envoy');
      const c = await open(envoyDirect, { clientId: dev.id, wsOptions: { localAddress: PROXY_ADDRESS, headers: { 'x-forwarded-client-cert': xfcc(dev) } } });
      const box = inbox(c);
      expect(await grantedQos(c, 'devices/fwd-envoy/#')).toBe(1);
      await c.publishAsync('devices/fwd-envoy/telemetry', 'through envoy', { qos: 1 });
      expect((await box.next((m) => m.topic === 'devices/fwd-envoy/telemetry')).payload).toBe('through envoy');
      expect(await grantedQos(c, 'devices/fwd-own/#')).toBe(SUBACK_FAILURE);
    });

    it('refuses a two-element XFCC (a client-sent header the proxy appended to) and the nginx header', async () => {
      const dev = await env.enroll('fwd-envoy-two');
      const other = await env.enroll('fwd-envoy-other');
      expect(await upgrade(envoyDirect, env.ca, { 'x-forwarded-client-cert': `${xfcc(other)},${xfcc(dev)}` }, PROXY_ADDRESS)).toBe(401);
      expect(await upgrade(envoyDirect, env.ca, { 'X-SSL-Client-Cert': escapedLeaf(dev.chain) }, PROXY_ADDRESS)).toBe(401);
      // The 401 can reach us before the broker's log line crosses its stdout pipe.
      await within(outputMatches(envoyBroker, /"reason":"multiple_elements"/), 5000, 'the multiple_elements refusal log line');
      expect(await upgrade(envoyDirect, env.ca, { 'x-forwarded-client-cert': xfcc(dev) }, '127.0.0.1')).toBe(403);
    });
  });

  it('refuses to start in forwarded mode without --ws-port or --trusted-proxy, or with an unknown format', async () => {
    const noWs = await runCli(['broker', '--data-dir', env.dataDir, '--port', '0', '--ws-forwarded-cert', 'nginx', '--trusted-proxy', PROXY_ADDRESS]);
    expect(noWs.code).toBe(2);
    expect(noWs.stderr).toMatch(/--ws-forwarded-cert needs --ws-port/);
    const noProxy = await runCli(['broker', '--data-dir', env.dataDir, '--port', '0', '--ws-port', '0', '--ws-forwarded-cert', 'nginx']);
    expect(noProxy.code).toBe(2);
    expect(noProxy.stderr).toMatch(/--ws-forwarded-cert needs at least one --trusted-proxy/);
    const unknown = await runCli(['broker', '--data-dir', env.dataDir, '--port', '0', '--ws-port', '0', '--ws-forwarded-cert', 'traefik', '--trusted-proxy', PROXY_ADDRESS]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--ws-forwarded-cert must be one of nginx, envoy/);
  });
});
