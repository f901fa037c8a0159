import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type IClientOptions } from 'mqtt';
import { WebSocket } from 'ws';
import { generate, parser, type Packet } from 'mqtt-packet';
import { healthUrlOf, startBrokerProcess, startFleetEnv, wssUrlOf, type DeviceCredentials, type FleetEnv } from './harness/broker-env.js';
import { httpGet, inbox, metric, metricUntil, outputMatches, readyzStatuses, tryConnect, within, type Attempt } from './harness/broker-probe.js';
import { runCli, type Service } from './harness/cli.js';
import { startHaproxy } from './harness/haproxy.js';
import { recipe } from './harness/readme.js';
import { tempDir } from './harness/temp-dir.js';

/** A PROXY v2 header (haproxy proxy-protocol.txt §2.2): PROXY command, TCP over IPv4. */
function proxyV2(src: string, sport: number, dst: string, dport: number): Buffer {
  const h = Buffer.alloc(28);
  Buffer.from('0d0a0d0a000d0a515549540a', 'hex').copy(h, 0);
  h[12] = 0x21; // version 2, PROXY
  h[13] = 0x11; // AF_INET, STREAM
  h.writeUInt16BE(12, 14);
  Buffer.from(src.split('.').map(Number)).copy(h, 16);
  Buffer.from(dst.split('.').map(Number)).copy(h, 20);
  h.writeUInt16BE(sport, 24);
  h.writeUInt16BE(dport, 26);
  return h;
}

/** JSON log lines of a service that match every field of `fields`. */
function logLines(service: Service, fields: Record<string, unknown>): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const text of service.output().split('\n')) {
    if (!text.startsWith('{')) continue;
    const line = JSON.parse(text) as Record<string, unknown>;
    if (Object.entries(fields).every(([k, v]) => line[k] === v)) lines.push(line);
  }
  return lines;
}

/** A raw TCP connection to 127.0.0.1:port that has written `preamble` (nothing when empty). */
async function rawTcp(port: number, preamble: Buffer): Promise<Socket> {
  const socket = netConnect({ port, host: '127.0.0.1', noDelay: true });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  if (preamble.length > 0) socket.write(preamble);
  return socket;
}

interface Outcome {
  /** Whether the TLS handshake completed. */
  secure: boolean;
  /** The first MQTT packet the broker answered with, or undefined when it closed first. */
  first: Packet | undefined;
  tls: TLSSocket;
  packets: Packet[];
  next(cmd: Packet['cmd']): Promise<Packet>;
}

/**
 * TLS with the device's certificate over an already-open socket (the PROXY header went
 * first, in clear), then MQTT CONNECT; resolves with the first packet or at the close.
 */
async function mqttOver(socket: Socket, creds: DeviceCredentials, ca: string, clientId = creds.id): Promise<Outcome> {
  const tls = tlsConnect({ socket, ca, cert: creds.chain, key: creds.key, servername: 'localhost' });
  // Not events.once: it rejects on the 'error' a refused handshake emits before 'close'.
  tls.on('error', () => undefined);
  const packets: Packet[] = [];
  const waiters: { cmd: Packet['cmd']; resolve: (p: Packet) => void }[] = [];
  const p = parser({ protocolVersion: 4 });
  p.on('packet', (packet: Packet) => {
    packets.push(packet);
    for (const w of waiters.filter((x) => x.cmd === packet.cmd)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(packet);
    }
  });
  tls.on('data', (d: Buffer) => p.parse(d));
  const closed = new Promise<undefined>((resolve) => tls.once('close', () => resolve(undefined)));
  const connected = await new Promise<boolean>((resolve) => {
    tls.once('secureConnect', () => resolve(true));
    void closed.then(() => resolve(false));
  });
  const next = (cmd: Packet['cmd']) => {
    const seen = packets.find((x) => x.cmd === cmd);
    return seen ? Promise.resolve(seen) : new Promise<Packet>((resolve) => waiters.push({ cmd, resolve }));
  };
  if (!connected) return { secure: false, first: undefined, tls, packets, next };
  tls.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive: 30 }));
  const first = await Promise.race([next('connack'), closed.then(() => undefined)]);
  return { secure: true, first, tls, packets, next };
}

/** A clean MQTT DISCONNECT, resolved when the broker has closed the connection [MQTT-3.14.4-1]. */
async function disconnect(outcome: Outcome): Promise<void> {
  const closed = new Promise<void>((resolve) => outcome.tls.once('close', () => resolve()));
  outcome.tls.write(generate({ cmd: 'disconnect' }));
  await closed;
}

/**
 * Repeats `attempt` until it connects, at most 20 times and 10 s: after a client's close the
 * broker frees its slot when it sees the close itself, a moment later.
 */
async function untilConnected<T>(attempt: (round: number) => Promise<T>, connected: (t: T) => boolean, discard: (t: T) => void): Promise<T> {
  const deadline = Date.now() + 10_000;
  let last: T | undefined;
  for (let round = 0; round < 20 && Date.now() < deadline; round++) {
    last = await attempt(round);
    if (connected(last)) return last;
    discard(last);
  }
  throw new Error('never connected again after a slot was freed');
}

describe('broker behind a PROXY protocol load balancer', () => {
  let env: FleetEnv;

  beforeAll(async () => {
    env = await startFleetEnv({ brokerArgs: ['--proxy-protocol', '--trusted-proxy', '127.0.0.1/32', '--connect-timeout', '2s'] });
  });
  afterAll(async () => {
    await env?.stop();
  });

  it('refuses to start with --proxy-protocol and no --trusted-proxy, saying why', async () => {
    const r = await runCli(['broker', '--data-dir', env.dataDir, '--port', '0', '--proxy-protocol']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--proxy-protocol needs at least one --trusted-proxy/);
    const bad = await runCli(['broker', '--data-dir', env.dataDir, '--port', '0', '--proxy-protocol', '--trusted-proxy', '10.0.0.0/40']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--trusted-proxy "10\.0\.0\.0\/40"/);
  });

  describe.each(['v2', 'v1'] as const)('through Debian HAProxy in mode tcp with send-proxy %s', (version) => {
    it('a device connects through the proxy, publishes and receives, and the broker names its address', async () => {
      const haproxy = await startHaproxy({ dir: env.dir, backendPort: env.broker.port, proxy: version });
      const creds = await env.enroll(`lb-${version}`);
      const client = await mqtt.connectAsync(
        `mqtts://127.0.0.1:${haproxy.port}`,
        { clientId: creds.id, cert: creds.chain, key: creds.key, ca: env.ca, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 },
        false,
      );
      try {
        const box = inbox(client);
        await client.subscribeAsync(`devices/${creds.id}/echo`, { qos: 1 });
        await client.publishAsync(`devices/${creds.id}/echo`, `via haproxy ${version}`, { qos: 1 });
        expect((await box.next((m) => m.topic === `devices/${creds.id}/echo`)).payload).toBe(`via haproxy ${version}`);
        // On loopback the device's address is 127.0.0.1 too; the header is what carried it.
        await outputMatches(env.broker, new RegExp(`"client":"${creds.id}","address":"127\\.0\\.0\\.1".*"msg":"client connected"`));
        expect(logLines(env.broker, { msg: 'PROXY header accepted', client: '127.0.0.1' }).length).toBeGreaterThan(0);
      } finally {
        await client.endAsync();
        await haproxy.stop();
      }
    });
  });

  it('takes the client address from a hand-made v2 header: 203.0.113.7 is the client in logs, presence events and refusals', async () => {
    const creds = await env.enroll('handmade-v2');
    // A service watching presence, itself behind the proxy as 198.51.100.1.
    const watcher = await mqttOver(await rawTcp(env.broker.port, proxyV2('198.51.100.1', 40100, '127.0.0.1', env.broker.port)), await env.enroll('handmade-watch', { kind: 'service' }), env.ca);
    watcher.tls.write(generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$tlsfleet/events/connected/+', qos: 1 }] }));
    expect(await watcher.next('suback')).toMatchObject({ granted: [1] });
    const header = proxyV2('203.0.113.7', 40000, '127.0.0.1', env.broker.port);
    const ok = await mqttOver(await rawTcp(env.broker.port, header), creds, env.ca);
    try {
      expect(ok.first).toMatchObject({ cmd: 'connack', returnCode: 0 });
      await outputMatches(env.broker, /"client":"handmade-v2","address":"203\.0\.113\.7".*"msg":"client connected"/);
      const announced = await watcher.next('publish');
      expect(announced).toMatchObject({ topic: '$tlsfleet/events/connected/handmade-v2' });
      expect(JSON.parse(String(announced.cmd === 'publish' ? announced.payload : ''))).toMatchObject({ id: 'handmade-v2', address: '203.0.113.7' });
      // A round trip on that connection: the bytes after the header are plain TLS as usual.
      ok.tls.write(generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/handmade-v2/#', qos: 1 }] }));
      await ok.next('suback');
      ok.tls.write(generate({ cmd: 'publish', topic: 'devices/handmade-v2/t', payload: Buffer.from('hi'), qos: 0, retain: false, dup: false }));
      expect(await ok.next('publish')).toMatchObject({ topic: 'devices/handmade-v2/t' });
    } finally {
      ok.tls.destroy();
      watcher.tls.destroy();
    }
    // Refusals name the proxied client too: a clientId that is not the certificate's.
    const refused = await mqttOver(await rawTcp(env.broker.port, proxyV2('203.0.113.7', 40001, '127.0.0.1', env.broker.port)), creds, env.ca, 'someone-else');
    refused.tls.destroy();
    expect(refused.first).toMatchObject({ cmd: 'connack', returnCode: 5 });
    await outputMatches(env.broker, /"address":"203\.0\.113\.7","reason":"client_id_mismatch"/);
  });

  it.each([
    ['no header at all (TLS straight away)', Buffer.alloc(0), 'no_header'],
    ['a malformed v1 header', Buffer.from('PROXY TCP4 203.0.113.700 127.0.0.1 40000 8883\r\n'), 'malformed'],
    ['a v2 header with a bad signature', Buffer.concat([Buffer.from('0d0a0d0a000d0a515549550a', 'hex'), proxyV2('203.0.113.7', 1, '127.0.0.1', 2).subarray(12)]), 'no_header'],
  ] as const)('closes a connection with %s before any CONNACK, and counts it', async (_name, preamble, reason) => {
    const creds = await env.enroll(`bad-${reason}-${preamble.length}`);
    const before = await metricUntil(env.healthUrl, 'tlsfleet_broker_proxy_refusals_total', { reason }, () => true);
    const outcome = await mqttOver(await rawTcp(env.broker.port, preamble), creds, env.ca);
    expect(outcome.first).toBeUndefined();
    expect(outcome.packets).toEqual([]);
    await metricUntil(env.healthUrl, 'tlsfleet_broker_proxy_refusals_total', { reason }, (v) => v > before);
  });

  it('closes a connection that sends no header within the connect timeout', async () => {
    const before = await metricUntil(env.healthUrl, 'tlsfleet_broker_proxy_refusals_total', { reason: 'timeout' }, () => true);
    const socket = await rawTcp(env.broker.port, Buffer.from('PROXY TCP4 '));
    await within(once(socket, 'close'), 10_000, 'close after --connect-timeout 2s');
    await metricUntil(env.healthUrl, 'tlsfleet_broker_proxy_refusals_total', { reason: 'timeout' }, (v) => v > before);
  });

  describe('a broker that trusts only 10.0.0.0/8', () => {
    let strict: Service;
    let health: string;
    beforeAll(async () => {
      strict = await startBrokerProcess(env.dataDir, ['--proxy-protocol', '--trusted-proxy', '10.0.0.0/8']);
      health = healthUrlOf(strict);
    });
    afterAll(async () => {
      await strict?.stop();
    });

    it('closes a well-formed header from 127.0.0.1 without reading it, and counts it', async () => {
      const creds = await env.enroll('untrusted-path');
      const outcome = await mqttOver(await rawTcp(strict.port, proxyV2('203.0.113.7', 40000, '127.0.0.1', strict.port)), creds, env.ca);
      expect(outcome.first).toBeUndefined();
      await metricUntil(health, 'tlsfleet_broker_proxy_refusals_total', { reason: 'untrusted_proxy' }, (v) => v >= 1);
      expect(logLines(strict, { msg: 'client connected' })).toEqual([]);
    });

    it('turns /readyz to 503 as soon as draining starts (SIGTERM), never back to 200', async () => {
      expect((await httpGet(`${health}/readyz`)).status).toBe(200);
      const exited = once(strict.child, 'exit');
      let gone = false;
      void exited.then(() => (gone = true));
      strict.child.kill('SIGTERM');
      const statuses = await readyzStatuses(health, () => gone);
      await within(exited, 5000, 'broker exit after SIGTERM');
      expect(statuses, JSON.stringify(statuses)).toContain(503);
      expect(statuses.slice(statuses.indexOf(503)), JSON.stringify(statuses)).not.toContain(200);
    });
  });

  describe('--max-connections-per-address 2', () => {
    const REFUSALS = 'tlsfleet_broker_address_limit_refusals_total';
    const ADDRESSES = 'tlsfleet_broker_client_addresses';
    const LIMIT_LOG = 'per-address connection limit reached: connection closed';

    it('refuses a limit that is not a whole number ≥ 1, saying which flag', async () => {
      for (const bad of ['0', '-1', '2.5', 'two']) {
        const r = await runCli(['broker', '--data-dir', env.dataDir, '--port', '0', `--max-connections-per-address=${bad}`]);
        expect(r.code, bad).toBe(2);
        expect(r.stderr).toMatch(/--max-connections-per-address must be a whole number ≥ 1/);
      }
    });

    describe('with --proxy-protocol: the PROXY header\'s source is the address counted', () => {
      let limited: Service;
      let health: string;
      beforeAll(async () => {
        limited = await startBrokerProcess(env.dataDir, ['--proxy-protocol', '--trusted-proxy', '127.0.0.1/32', '--max-connections-per-address', '2']);
        health = healthUrlOf(limited);
      });
      afterAll(async () => {
        await limited?.stop();
      });

      const from = async (address: string, port: number) => rawTcp(limited.port, proxyV2(address, port, '127.0.0.1', limited.port));

      it('admits two devices claiming 203.0.113.7, closes a third before TLS, admits 203.0.113.8, and 203.0.113.7 again after a disconnect', async () => {
        const [a, b, c, d] = await Promise.all(['cap-a', 'cap-b', 'cap-c', 'cap-d'].map((id) => env.enroll(id)));
        const open: Outcome[] = [];
        try {
          for (const [creds, port] of [[a!, 41000], [b!, 41001]] as const) {
            const ok = await mqttOver(await from('203.0.113.7', port), creds, env.ca);
            open.push(ok);
            expect(ok.first).toMatchObject({ cmd: 'connack', returnCode: 0 });
          }
          const before = await metric(health, REFUSALS, { listener: 'mqtts' });
          const third = await mqttOver(await from('203.0.113.7', 41002), c!, env.ca);
          expect(third.secure).toBe(false);
          expect(third.packets).toEqual([]);
          expect(await metricUntil(health, REFUSALS, { listener: 'mqtts' }, (v) => v > before)).toBe(before + 1);
          await outputMatches(limited, /"client":"203\.0\.113\.7","listener":"mqtts","limit":2.*"msg":"per-address connection limit reached/);
          expect(logLines(limited, { msg: LIMIT_LOG, client: '203.0.113.8' })).toEqual([]);

          const other = await mqttOver(await from('203.0.113.8', 41003), d!, env.ca);
          open.push(other);
          expect(other.first).toMatchObject({ cmd: 'connack', returnCode: 0 });
          expect(await metric(health, ADDRESSES)).toBe(2);

          await disconnect(open[0]!);
          const again = await untilConnected(
            async (round) => mqttOver(await from('203.0.113.7', 41100 + round), c!, env.ca),
            (o) => o.first?.cmd === 'connack',
            (o) => o.tls.destroy(),
          );
          open.push(again);
          expect(again.first).toMatchObject({ cmd: 'connack', returnCode: 0 });
        } finally {
          for (const o of open) o.tls.destroy();
        }
        // Every close released its slot: no address is left counted.
        await metricUntil(health, ADDRESSES, {}, (v) => v === 0);
      });

      it('counts an IPv4-mapped IPv6 header as its IPv4 address', async () => {
        const [a, b, c] = await Promise.all(['cap-v6-a', 'cap-v6-b', 'cap-v6-c'].map((id) => env.enroll(id)));
        const open: Outcome[] = [];
        try {
          open.push(await mqttOver(await from('198.51.100.9', 42000), a!, env.ca));
          open.push(await mqttOver(await rawTcp(limited.port, Buffer.from(`PROXY TCP6 ::ffff:198.51.100.9 ::1 42001 ${limited.port}\r\n`)), b!, env.ca));
          expect(open.map((o) => o.first?.cmd)).toEqual(['connack', 'connack']);
          const third = await mqttOver(await rawTcp(limited.port, Buffer.from(`PROXY TCP6 ::FFFF:C633:6409 ::1 42002 ${limited.port}\r\n`)), c!, env.ca);
          expect(third.secure).toBe(false);
          await outputMatches(limited, /"client":"198\.51\.100\.9","listener":"mqtts".*"msg":"per-address connection limit reached/);
        } finally {
          for (const o of open) o.tls.destroy();
        }
      });
    });

    describe('without PROXY: the TCP peer (127.0.0.1) is the address counted, on mqtts and wss together', () => {
      let limited: Service;
      let health: string;
      let wsUrl: string;
      const clients: Attempt['client'][] = [];
      beforeAll(async () => {
        limited = await startBrokerProcess(env.dataDir, ['--ws-port', '0', '--max-connections-per-address', '2']);
        health = healthUrlOf(limited);
        wsUrl = wssUrlOf(limited);
      });
      afterAll(async () => {
        for (const c of clients) c.end(true);
        await limited?.stop();
      });

      async function attempt(url: string, creds: DeviceCredentials, opts: IClientOptions = {}): Promise<Attempt> {
        const a = await tryConnect(url, { clientId: creds.id, cert: creds.chain, key: creds.key, ca: env.ca, ...opts });
        clients.push(a.client);
        return a;
      }

      it('admits two, closes a third mqtts connection before TLS, answers a wss upgrade 429, and admits wss once one has left', async () => {
        const [a, b, c, w] = await Promise.all(['peer-a', 'peer-b', 'peer-c', 'peer-w'].map((id) => env.enroll(id)));
        const first = await attempt(limited.url, a!);
        const second = await attempt(limited.url, b!);
        expect([first.outcome, second.outcome]).toEqual(['connected', 'connected']);
        expect(await metric(health, ADDRESSES)).toBe(1);

        const third = await mqttOver(await rawTcp(limited.port, Buffer.alloc(0)), c!, env.ca);
        expect(third.secure).toBe(false);
        await metricUntil(health, REFUSALS, { listener: 'mqtts' }, (v) => v === 1);
        await outputMatches(limited, /"client":"127\.0\.0\.1","listener":"mqtts","limit":2.*"msg":"per-address connection limit reached/);

        const ws = new WebSocket(wsUrl, ['mqtt'], { cert: w!.chain, key: w!.key, ca: env.ca });
        const status = await new Promise<number | string>((resolve) => {
          ws.once('open', () => resolve('open'));
          ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
          ws.once('error', (err) => resolve(err.message));
        });
        ws.on('error', () => undefined);
        ws.terminate();
        expect(status).toBe(429);
        await metricUntil(health, REFUSALS, { listener: 'wss' }, (v) => v === 1);

        await first.client.endAsync();
        const overWss = await untilConnected(
          () => attempt(wsUrl, w!),
          (x) => x.outcome === 'connected',
          (x) => x.client.end(true),
        );
        expect(overWss.outcome).toBe('connected');
        expect(await metric(health, REFUSALS, { listener: 'mqtts' })).toBe(1);
      });
    });
  });
});

describe('the README\'s HAProxy configuration', () => {
  it('is a configuration Debian\'s HAProxy accepts (haproxy -c)', () => {
    const dir = tempDir('tlsfleet-haproxy-cfg-');
    try {
      const cfg = join(dir.path, 'haproxy.cfg');
      writeFileSync(cfg, recipe('haproxy-cfg'));
      const bin = existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy';
      const check = spawnSync(bin, ['-c', '-f', cfg], { encoding: 'utf8' });
      expect(check.stdout + check.stderr).toMatch(/Configuration file is valid/);
      expect(check.status).toBe(0);
    } finally {
      dir.cleanup();
    }
  });
});
