import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { generate, parser, type Packet } from 'mqtt-packet';
import type { Service } from './cli.js';
import type { DeviceCredentials } from './broker-env.js';

/** How one connection attempt ended: CONNACK 0, CONNACK refused or a TLS error, or a bare close. */
export interface Attempt {
  outcome: 'connected' | 'refused' | 'closed';
  /** CONNACK return code (mqtt.js `err.code` is a number) or the TLS/socket error code. */
  code: number | string | undefined;
  error: Error | undefined;
  client: MqttClient;
}

/**
 * One mqtt.js connection attempt with no retries, resolved by the first of 'connect', 'error'
 * or 'close'. Unlike `mqtt.connectAsync` it never hangs on a close without an error.
 */
export function tryConnect(url: string, opts: IClientOptions): Promise<Attempt> {
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ...opts });
  return new Promise((resolve) => {
    const settle = (outcome: Attempt['outcome'], error?: Error) => {
      client.removeListener('connect', onConnect);
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
      client.on('error', () => undefined);
      if (outcome !== 'connected') client.end(true);
      resolve({ outcome, code: (error as (Error & { code?: number | string }) | undefined)?.code, error, client });
    };
    const onConnect = () => settle('connected');
    const onError = (err: Error) => settle('refused', err);
    const onClose = () => settle('closed');
    client.on('connect', onConnect);
    client.on('error', onError);
    client.on('close', onClose);
  });
}

/** Resolves with Date.now() at the client's next 'close' event. */
export function closedAt(client: MqttClient): Promise<number> {
  return new Promise((resolve) => client.once('close', () => resolve(Date.now())));
}

export interface Inbox {
  readonly messages: { topic: string; payload: string; retain: boolean; qos: number }[];
  /** Resolves with the first message (already received or yet to come) that `match` accepts. */
  next(match: (m: Inbox['messages'][number]) => boolean): Promise<Inbox['messages'][number]>;
}

/** Records every message a client receives from now on. */
export function inbox(client: MqttClient): Inbox {
  const messages: Inbox['messages'] = [];
  const waiters: { match: (m: Inbox['messages'][number]) => boolean; resolve: (m: Inbox['messages'][number]) => void }[] = [];
  client.on('message', (topic, payload, packet) => {
    const m = { topic, payload: payload.toString('utf8'), retain: packet.retain, qos: packet.qos };
    messages.push(m);
    for (const w of [...waiters]) {
      if (w.match(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  return {
    messages,
    next: (match) => {
      const seen = messages.find(match);
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

/**
 * SUBSCRIBE one filter; resolves with the granted QoS, 128 for SUBACK 0x80 (refused). mqtt.js
 * 5.x rejects a 0x80 grant with an ErrorWithSubackPacket carrying the SUBACK; its return code
 * is read back here so tests compare return codes, not error texts.
 */
export async function grantedQos(client: MqttClient, filter: string, qos: 0 | 1 = 1): Promise<number> {
  try {
    const granted = await client.subscribeAsync(filter, { qos });
    return granted[0]?.qos ?? -1;
  } catch (err) {
    const code = (err as { packet?: { cmd?: string; granted?: unknown[] } }).packet?.granted?.[0];
    if (typeof code === 'number') return code;
    throw err;
  }
}

/** GET a path of the health port. */
export function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of one Prometheus sample (0 when absent); `labels` must be the whole label set. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? '').split(/,(?=[a-zA-Z_]\w*=")/).filter(Boolean).sort().join(',');
    if (got === want) return Number(m[3]);
  }
  return 0;
}

/** Reads one sample from the broker's /metrics. */
export async function metric(healthUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await httpGet(`${healthUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return sample(res.body, name, labels);
}

/**
 * Asks `/readyz` back to back until `stopped()` says the process is gone or the health port
 * stops answering; every status (or the error code that ended it), in order.
 */
export async function readyzStatuses(healthUrl: string, stopped: () => boolean): Promise<(number | string)[]> {
  const statuses: (number | string)[] = [];
  while (!stopped()) {
    const s = await httpGet(`${healthUrl}/readyz`).then(
      (r) => r.status,
      (e: NodeJS.ErrnoException) => e.code ?? 'error',
    );
    statuses.push(s);
    if (typeof s === 'string') break;
  }
  return statuses;
}

/**
 * Re-reads a metric until `done` accepts it, each round a real /metrics request, for at
 * most `withinMs`. Throws with the last value when it never does.
 */
export async function metricUntil(healthUrl: string, name: string, labels: Record<string, string>, done: (v: number) => boolean, withinMs = 5_000): Promise<number> {
  const deadline = Date.now() + withinMs;
  let last = NaN;
  do {
    last = await metric(healthUrl, name, labels);
    if (done(last)) return last;
  } while (Date.now() < deadline);
  throw new Error(`${name}${JSON.stringify(labels)} never reached the expected value within ${withinMs} ms; last ${last}`);
}

/** Resident set size of a process, KiB, from /proc/<pid>/status. */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/** Resolves once the output of a service (or haproxy) matches `re` more than `after` times, from now on or already. */
export function outputMatches(service: Pick<Service, 'child' | 'output'>, re: RegExp, after = 0): Promise<void> {
  const count = () => (service.output().match(new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`)) ?? []).length;
  if (count() > after) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = () => {
      // `output()` is appended by the harness's own 'data' listener, registered first.
      if (count() > after) {
        cleanup();
        resolve();
      }
    };
    const onExit = () => {
      cleanup();
      reject(new Error(`process exited before its output matched ${re}`));
    };
    const cleanup = () => {
      service.child.stdout?.off('data', check);
      service.child.stderr?.off('data', check);
      service.child.off('exit', onExit);
    };
    service.child.stdout?.on('data', check);
    service.child.stderr?.on('data', check);
    service.child.on('exit', onExit);
  });
}

export function countMatches(text: string, re: RegExp): number {
  return (text.match(new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`)) ?? []).length;
}

/** A TLS connection to the broker speaking raw MQTT through mqtt-packet, for packets mqtt.js will not send. */
export interface RawMqtt {
  readonly socket: TLSSocket;
  readonly packets: Packet[];
  send(packet: Packet): void;
  /** Writes bytes as they are, for packets mqtt-packet refuses to generate. */
  sendBytes(bytes: Buffer): void;
  /** Resolves with the first packet (received or to come) of this command. */
  next(cmd: Packet['cmd']): Promise<Packet>;
  /** Resolves at the socket's 'close'. */
  readonly closed: Promise<void>;
  /** TLS sessions the server gave for resumption, in order ('session' events). */
  readonly sessions: Buffer[];
}

/** `session`: a TLS session from an earlier connection's `sessions`, offered for resumption. */
export async function rawMqtt(port: number, creds: DeviceCredentials, ca: string, tls: { session?: Buffer } = {}): Promise<RawMqtt> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca, cert: creds.chain, key: creds.key, servername: 'localhost', ...tls });
  const sessions: Buffer[] = [];
  socket.on('session', (session: Buffer) => sessions.push(session));
  socket.on('error', () => undefined);
  const closed = once(socket, 'close').then(() => undefined);
  await once(socket, 'secureConnect');
  const packets: Packet[] = [];
  const waiters: { cmd: Packet['cmd']; resolve: (p: Packet) => void }[] = [];
  const p = parser({ protocolVersion: 4 });
  p.on('packet', (packet: Packet) => {
    packets.push(packet);
    for (const w of [...waiters]) {
      if (w.cmd === packet.cmd) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(packet);
      }
    }
  });
  socket.on('data', (d: Buffer) => p.parse(d));
  return {
    socket,
    packets,
    send: (packet) => socket.write(generate(packet)),
    sendBytes: (bytes) => socket.write(bytes),
    next: (cmd) => {
      const seen = packets.find((x) => x.cmd === cmd);
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ cmd, resolve }));
    },
    closed,
    sessions,
  };
}

/**
 * CONNECT, MQTT 3.1.1, zero-length clientId and clean session 0, written by hand: mqtt.js and
 * mqtt-packet both refuse to send it [MQTT-3.1.3-7].
 */
export const EMPTY_ID_UNCLEAN_CONNECT = Buffer.from([
  0x10, 0x0c, // CONNECT, remaining length 12
  0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, // "MQTT"
  0x04, // protocol level 4
  0x00, // flags: clean session 0, no will, no credentials
  0x00, 0x1e, // keep alive 30 s
  0x00, 0x00, // clientId ""
]);

/** mosquitto client arguments for one identity (the cert file holds leaf + intermediate). */
export function mosquittoArgs(port: number, caFile: string, creds: DeviceCredentials): string[] {
  return ['-h', '127.0.0.1', '-p', String(port), '--cafile', caFile, '--cert', creds.chainFile, '--key', creds.keyFile, '-i', creds.id];
}

export interface MosquittoSub {
  readonly child: ChildProcess;
  /** Everything printed so far. */
  output(): string;
  /** Resolves once the output matches `re`; rejects, with the output, if the process exits first or `withinMs` passes. */
  waitFor(re: RegExp, withinMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `mosquitto_sub -d -v ...`: `-d` prints the SUBACK, so a test waits for the subscription to
 * be in place instead of sleeping. Line-buffered through stdbuf: on a pipe, mosquitto_sub
 * holds its debug lines until exit.
 */
export function mosquittoSub(args: string[]): MosquittoSub {
  const child = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-d', '-v', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: string) => {
    out += d;
    for (const l of [...listeners]) l();
  };
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);
  const exited = once(child, 'exit');
  return {
    child,
    output: () => out,
    waitFor: (re, withinMs = 10_000) =>
      new Promise((resolve, reject) => {
        const deadline = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`mosquitto_sub did not print ${re} within ${withinMs} ms:\n${out}`));
        }, withinMs);
        const check = () => {
          if (re.test(out)) {
            listeners.delete(check);
            clearTimeout(deadline);
            resolve();
          }
        };
        listeners.add(check);
        check();
        void exited.then(() => {
          clearTimeout(deadline);
          if (!re.test(out)) reject(new Error(`mosquitto_sub exited before printing ${re}:\n${out}`));
        });
      }),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      // mosquitto_sub stuck in a reconnect loop may not honour SIGTERM promptly.
      const kill = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(kill);
    },
  };
}

/** Runs `mosquitto_pub -d` to completion; past `withinMs` it is killed and answers code null. */
export async function mosquittoPub(args: string[], withinMs = 10_000): Promise<{ code: number | null; output: string }> {
  const child = spawn('mosquitto_pub', ['-d', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  const deadline = setTimeout(() => child.kill('SIGKILL'), withinMs);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(deadline);
  return { code, output };
}

/**
 * Resolves once `done()` holds, or once nothing arrived for `quietMs`: a test then names what
 * is missing instead of waiting for it until its timeout. Call `arrived` on each arrival.
 */
export function untilDoneOrQuiet(done: () => boolean, quietMs: number): { arrived(): void; settled: Promise<void> } {
  let arrived = () => {};
  const settled = new Promise<void>((resolve) => {
    let quiet = setTimeout(resolve, quietMs);
    arrived = () => {
      clearTimeout(quiet);
      if (done()) return resolve();
      quiet = setTimeout(resolve, quietMs);
    };
  });
  arrived();
  return { arrived: () => arrived(), settled };
}

/**
 * Rejects when `promise` has not settled within `ms`: a deadline that fails a test early,
 * never a pause that lets it pass.
 */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** The serial number (upper-case hex, as Node prints it) of the certificate a TLS server presents now. */
export async function servedSerial(port: number, ca: string, creds: DeviceCredentials): Promise<string> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca, cert: creds.chain, key: creds.key, servername: 'localhost' });
  socket.on('error', () => undefined);
  try {
    await once(socket, 'secureConnect');
    return socket.getPeerCertificate().serialNumber;
  } finally {
    socket.destroy();
  }
}
