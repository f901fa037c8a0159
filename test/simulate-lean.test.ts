import { EventEmitter, once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer as createNetServer, connect as netConnect } from 'node:net';
import { createSecureContext, createServer, type TLSSocket } from 'node:tls';
import { enrollWithStore, FileCredentialStore, identityStatus } from '@tlsfleet/device-sdk';
import type { FleetSummary } from '@tlsfleet/simulators';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeanDevice, type LeanDeviceHooks, type LeanTarget } from '../simulators/src/lean/lean-device.js';
import { FrameReader } from '../simulators/src/lean/mqtt-wire.js';
import { mintToken, startFleetEnv, type FleetEnv } from './harness/broker-env.js';
import { runCli, type Service } from './harness/cli.js';
import { checker, restartBroker, revokeDevice } from './harness/device-env.js';
import { tempDir } from './harness/temp-dir.js';

/** A lean device's hook calls as events, with the stop reason kept. */
class Recorder extends EventEmitter implements LeanDeviceHooks {
  errors: string[] = [];
  connected = () => void this.emit('connected');
  disconnected = () => void this.emit('disconnected');
  error = (_d: LeanDevice, code: string) => void this.errors.push(code);
  stopped = (_d: LeanDevice, code: string, message: string) => void this.emit('stopped', code, message);
  constructor(private readonly stateDir: string) {
    super();
  }
  // As the simulator does: a refused session asks the service's CRL whether the identity is dead.
  refused = async () => {
    const identity = (await new FileCredentialStore(this.stateDir).load()).current!;
    const status = await identityStatus(identity);
    return status.state === 'revoked' ? { code: 'revoked', message: `certificate ${identity.serial} is revoked` } : undefined;
  };
}

function target(url: string, keepaliveSeconds = 60): LeanTarget {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port), keepaliveSeconds, connectTimeoutMs: 10_000, initialDelayMs: 100, maxDelayMs: 1000, maxInflight: 100 };
}

/** Enrolls `id` through the device SDK and builds a lean device on the stored identity. */
async function leanDevice(env: FleetEnv, id: string, brokerUrl = env.brokerUrl, keepaliveSeconds = 60): Promise<{ device: LeanDevice; hooks: Recorder }> {
  const stateDir = join(env.dir, 'lean', id);
  const identity = await enrollWithStore(new FileCredentialStore(stateDir), { token: await mintToken(env, id, 'device', 3600), provisioningUrl: env.url, bootstrapCa: env.ca });
  expect(existsSync(join(stateDir, 'identity.json'))).toBe(true);
  const context = createSecureContext({ ca: identity.caBundlePem, cert: identity.chainPem, key: identity.privateKeyPem });
  const hooks = new Recorder(stateDir);
  return { device: new LeanDevice(id, 0, context, target(brokerUrl, keepaliveSeconds), hooks), hooks };
}

function publish(device: LeanDevice, payload: string): Promise<string | undefined> {
  return new Promise((resolve) => device.publish(`devices/${device.id}/telemetry`, Buffer.from(payload), 1, resolve));
}

function nextMessage(client: MqttClient, payload: string): Promise<string> {
  return new Promise((resolve) => {
    const on = (topic: string, body: Buffer) => {
      if (body.toString() !== payload) return;
      client.off('message', on);
      resolve(topic);
    };
    client.on('message', on);
  });
}

describe('lean simulated device, against a real broker', () => {
  let env: FleetEnv;
  let watcher: MqttClient;
  beforeAll(async () => {
    env = await startFleetEnv();
    watcher = await checker(env, 'devices/+/telemetry');
  });
  let restarted: Service | undefined;
  afterAll(async () => {
    await watcher?.endAsync();
    // The broker the restart test started in place of env's.
    await restarted?.stop();
    await env?.stop();
  });

  it('connects with its own identity, publishes QoS 1 and sees the PUBACK; the service sees the message', async () => {
    const { device, hooks } = await leanDevice(env, 'lean-a');
    const up = once(hooks, 'connected');
    device.start();
    await up;
    const seen = nextMessage(watcher, 'hello-a');
    expect(await publish(device, 'hello-a')).toBeUndefined();
    expect(await seen).toBe('devices/lean-a/telemetry');
    await device.close();
    expect(await publish(device, 'late')).toBe('closed');
  });

  it('stops with reason `revoked` once its device is revoked: closed at once, refused after', async () => {
    const { device, hooks } = await leanDevice(env, 'lean-r');
    const up = once(hooks, 'connected');
    device.start();
    await up;
    const down = once(hooks, 'disconnected');
    const stopped = once(hooks, 'stopped');
    await revokeDevice(env, 'lean-r');
    await down;
    const [code] = (await stopped) as [string, string];
    expect(code).toBe('revoked');
    expect(device.state).toBe('reenrollment-required');
    expect(await publish(device, 'after')).toBe('revoked');
    await device.close();
  });

  it('delivers a message whose PUBACK was lost to a broker restart: redelivered on the next link', async () => {
    // The device reaches the broker through a gate the test opens once a new checker listens.
    let open = true;
    const gate = createNetServer((inbound) => {
      if (!open) return void inbound.destroy();
      const outbound = netConnect(env.broker.port, '127.0.0.1');
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
    });
    gate.listen(0, '127.0.0.1');
    await once(gate, 'listening');
    const { device, hooks } = await leanDevice(env, 'lean-b', `mqtts://127.0.0.1:${(gate.address() as { port: number }).port}`);
    const up = once(hooks, 'connected');
    device.start();
    await up;
    // A broker frozen then killed: the PUBLISH was written, its PUBACK never comes.
    process.kill(env.broker.child.pid!, 'SIGSTOP');
    const acked = publish(device, 'hello-b');
    const down = once(hooks, 'disconnected');
    open = false;
    env.broker.child.kill('SIGKILL');
    await down;
    restarted = await restartBroker(env.broker, env.dataDir);
    await watcher.endAsync();
    watcher = await checker(env, 'devices/+/telemetry', 'checker-2');
    const seen = nextMessage(watcher, 'hello-b');
    const back = once(hooks, 'connected');
    open = true;
    await back;
    expect(await acked).toBeUndefined();
    expect(await seen).toBe('devices/lean-b/telemetry');
    await device.close();
    gate.close();
  });
});

describe('lean simulated device, on the wire', () => {
  const tmp = tempDir('tlsfleet-lean-wire-');
  afterAll(() => tmp.cleanup());

  it('redelivers an unacknowledged PUBLISH with DUP and the same packet id, and sends PINGREQ', async () => {
    // A TLS server that reads MQTT: CONNACK each link, never PUBACK the first PUBLISH, drop the link.
    const env = await startFleetEnv();
    try {
      const d = env.dataDir;
      const server = createServer({ key: readFileSync(join(d, 'broker.key')), cert: readFileSync(join(d, 'broker.pem')), ca: env.ca, requestCert: true, rejectUnauthorized: true });
      const publishes: { dup: boolean; id: number; link: number }[] = [];
      let links = 0;
      server.on('secureConnection', (s: TLSSocket) => {
        const link = ++links;
        const reader = new FrameReader();
        s.on('data', (chunk: Buffer) =>
          reader.push(chunk, (f) => {
            if (f.type === 1) s.write(Buffer.from([0x20, 2, 0, 0]));
            if (f.type === 12) {
              s.write(Buffer.from([0xd0, 0]));
              server.emit('pinged');
            }
            if (f.type !== 3) return;
            const topicLength = f.body.readUInt16BE(0);
            const id = f.body.readUInt16BE(2 + topicLength);
            publishes.push({ dup: (f.flags & 0x08) !== 0, id, link });
            if (link === 1) s.destroy();
            else s.write(Buffer.from([0x40, 2, id >> 8, id & 0xff]));
          }),
        );
        s.on('error', () => {});
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const port = (server.address() as { port: number }).port;
      const { device, hooks } = await leanDevice(env, 'lean-w', `mqtts://127.0.0.1:${port}`, 1);
      const up = once(hooks, 'connected');
      device.start();
      await up;
      expect(await publish(device, 'wire')).toBeUndefined();
      expect(publishes).toEqual([
        { dup: false, id: 1, link: 1 },
        { dup: true, id: 1, link: 2 },
      ]);
      // Keepalive 1 s: a quiet link gets a PINGREQ within it.
      await once(server, 'pinged');
      await device.close();
      server.close();
    } finally {
      await env.stop();
    }
  });
});

describe('tlsfleet simulate with lean devices', () => {
  const tmp = tempDir('tlsfleet-sim-lean-');
  afterAll(() => tmp.cleanup());

  it('runs 20 lean devices, times a revocation, and writes the steady, ramp and probe figures', async () => {
    const reportDir = join(tmp.path, 'report');
    const r = await runCli(['simulate', '--devices', '20', '--ramp', '40', '--publish-interval', '1s', '--duration', '8s', '--workers', '2', '--probe-revocation', '--report', reportDir]);
    expect(existsSync(join(reportDir, 'summary.json')), r.stderr).toBe(true);
    const s = JSON.parse(readFileSync(join(reportDir, 'summary.json'), 'utf8')) as FleetSummary;
    expect(s.scenario.pass, JSON.stringify(s.scenario.verdicts)).toBe(true);
    expect(r.code).toBe(0);
    expect(s.config.deviceModel).toBe('lean');
    expect(s.totals).toMatchObject({ enrolled: 20, connectedPeak: 20, lost: 0 });
    expect(s.totals.acked).toBeGreaterThan(20 * 5);
    const res = s.resources;
    expect(res.steadyRssBytes).toBeGreaterThan(0);
    expect(res.rssBytesPerDeviceSteady).toBeCloseTo(res.steadyRssBytes! / 20);
    expect(res.cpuMsPerDeviceRamp).toBeGreaterThan(0);
    expect(res.cpuMsPerDeviceSteady).toBeGreaterThan(0);
    expect(res.rampDevicesPerSecond).toBeGreaterThan(0);
    expect(res.revocationToCloseMs).toBeGreaterThan(0);
    expect(res.revocationToCloseMs).toBeLessThan(10_000);
    expect(r.stdout).toMatch(/simulator \(lean devices\) at steady state: [\d.]+ KiB RSS per device/);
    expect(r.stdout).toMatch(/revocation probe: session closed [\d.]+ s after the revoke request/);
    expect(s.events.map((e) => e.label)).toContain('probe device revoked');
  });

  it('refuses lean devices for a renewal storm, which needs the SDK', async () => {
    const r = await runCli(['simulate', '--devices', '5', '--scenario', 'renewal-storm', '--device-model', 'lean']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/renewal-storm needs the SDK's renewals: use --device-model sdk/);
  });
});
