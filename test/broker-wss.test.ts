import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { WebSocket } from 'ws';
import { startFleetEnv, wssUrlOf, type DeviceCredentials, type FleetEnv } from './harness/broker-env.js';
import { closedAt, grantedQos, inbox, metric, metricUntil, tryConnect, type Attempt } from './harness/broker-probe.js';
import { revokeDevice } from './harness/device-env.js';
import { logLines } from './harness/cli.js';

/** SUBACK return code 0x80 "Failure", as mqtt.js reports it in `granted[].qos`. */
const SUBACK_FAILURE = 128;
/** CONNACK return code 5 "Connection refused, not authorized" (MQTT 3.1.1 §3.2.2.3). */
const NOT_AUTHORIZED = 5;

describe('MQTT over WebSockets (wss with client certificates)', () => {
  let env: FleetEnv;
  let wsUrl: string;
  let ingest: DeviceCredentials;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    env = await startFleetEnv({ brokerArgs: ['--ws-port', '0'] });
    wsUrl = wssUrlOf(env.broker);
    ingest = await env.enroll('ingest', { kind: 'service' });
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await env?.stop();
  });

  const overWss = (creds: DeviceCredentials, opts: IClientOptions = {}): IClientOptions => ({ clientId: creds.id, cert: creds.chain, key: creds.key, ca: env.ca, ...opts });
  async function openWss(creds: DeviceCredentials, opts: IClientOptions = {}): Promise<MqttClient> {
    const c = await mqtt.connectAsync(wsUrl, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ...overWss(creds, opts) }, false);
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  }
  async function attemptWss(opts: IClientOptions): Promise<Attempt> {
    const a = await tryConnect(wsUrl, { ca: env.ca, ...opts });
    clients.push(a.client);
    return a;
  }

  it('logs the wss URL beside the mqtts and health URLs on the JSON listening line', () => {
    const [line] = logLines(env.broker.output(), 'broker listening');
    expect(line).toMatchObject({ url: expect.stringMatching(/^mqtts:\/\/127\.0\.0\.1:\d+$/), healthUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/), wsUrl: expect.stringMatching(/^wss:\/\/127\.0\.0\.1:\d+$/) });
  });

  // Before any other test leaves a client connected: it ends at zero addresses.
  it('counts distinct client addresses with no per-address limit: one for 127.0.0.1 on both listeners, none once they close', async () => {
    const overWs = await openWss(await env.enroll('wss-count'));
    const overTls = await env.connect(await env.enroll('tls-count'));
    overTls.on('error', () => undefined);
    clients.push(overTls);
    expect(await metric(env.healthUrl, 'tlsfleet_broker_client_addresses')).toBe(1);
    await Promise.all([overWs.endAsync(), overTls.endAsync()]);
    await metricUntil(env.healthUrl, 'tlsfleet_broker_client_addresses', {}, (v) => v === 0);
  });

  it('lets a device publish and receive on its own topic over wss', async () => {
    const dev = await env.enroll('wss-own');
    const c = await openWss(dev);
    const box = inbox(c);
    expect(await grantedQos(c, 'devices/wss-own/#')).toBe(1);
    await c.publishAsync('devices/wss-own/telemetry', 'hello over wss', { qos: 1 });
    expect((await box.next((m) => m.topic === 'devices/wss-own/telemetry')).payload).toBe('hello over wss');
  });

  it('delivers between a device on wss, a service on mqtts and a device on mqtts', async () => {
    const wssDev = await env.enroll('wss-peer');
    const tlsDev = await env.enroll('tls-peer');
    const service = await env.connect(ingest);
    service.on('error', () => undefined);
    clients.push(service);
    const serviceBox = inbox(service);
    expect(await grantedQos(service, 'devices/+/#')).toBe(1);

    const overWs = await openWss(wssDev);
    const wsBox = inbox(overWs);
    expect(await grantedQos(overWs, 'devices/wss-peer/commands/#')).toBe(1);
    const overTls = await env.connect(tlsDev);
    overTls.on('error', () => undefined);
    clients.push(overTls);

    await overWs.publishAsync('devices/wss-peer/telemetry', 'from wss', { qos: 1 });
    expect((await serviceBox.next((m) => m.topic === 'devices/wss-peer/telemetry')).payload).toBe('from wss');
    await overTls.publishAsync('devices/tls-peer/telemetry', 'from mqtts', { qos: 1 });
    expect((await serviceBox.next((m) => m.topic === 'devices/tls-peer/telemetry')).payload).toBe('from mqtts');
    // The service on mqtts commands the device on wss.
    await service.publishAsync('devices/wss-peer/commands/reboot', 'now', { qos: 1 });
    expect((await wsBox.next((m) => m.topic === 'devices/wss-peer/commands/reboot')).payload).toBe('now');
  });

  it('fails the TLS handshake without a client certificate', async () => {
    const a = await attemptWss({ clientId: 'anonymous' });
    expect(a.outcome).toBe('refused');
    expect(a.code).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
  });

  it('answers CONNACK 5 to a clientId other than the certificate identity', async () => {
    const dev = await env.enroll('wss-spoofer');
    const a = await attemptWss(overWss(dev, { clientId: 'someone-else' }));
    expect(a.outcome).toBe('refused');
    expect(a.code).toBe(NOT_AUTHORIZED);
  });

  it('refuses a subscription outside the device\'s own topics with SUBACK 0x80', async () => {
    const dev = await env.enroll('wss-nosy');
    const c = await openWss(dev);
    expect(await grantedQos(c, 'devices/wss-own/#')).toBe(SUBACK_FAILURE);
    expect(await grantedQos(c, '#')).toBe(SUBACK_FAILURE);
  });

  it('refuses a WebSocket that does not offer the mqtt subprotocol', async () => {
    const dev = await env.enroll('wss-proto');
    for (const protocols of [['chat'], []]) {
      const ws = new WebSocket(wsUrl, protocols, { cert: dev.chain, key: dev.key, ca: env.ca });
      const status = await new Promise<number | string>((resolve) => {
        ws.once('open', () => resolve('open'));
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('error', (err) => resolve(err.message));
      });
      ws.terminate();
      expect(status).toBe(400);
    }
  });

  it('closes a connection that sends MQTT in a text frame [MQTT-6.0.0-1]', async () => {
    const dev = await env.enroll('wss-text');
    const ws = new WebSocket(wsUrl, ['mqtt'], { cert: dev.chain, key: dev.key, ca: env.ca });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.on('error', () => undefined);
    ws.send('\u0010\u0000', { binary: false });
    await closed;
    expect(ws.readyState).toBe(WebSocket.CLOSED);
  });

  it('closes a revoked device\'s live wss session within 10 s', async () => {
    const dev = await env.enroll('wss-revoked');
    const c = await openWss(dev);
    const closed = closedAt(c);
    const revokedAt = Date.now();
    await revokeDevice(env, dev.id);
    expect((await closed) - revokedAt).toBeLessThan(10_000);
    // And it cannot come back over wss.
    const again = await attemptWss(overWss(dev));
    expect(again.outcome).not.toBe('connected');
  }, 20_000);
});
