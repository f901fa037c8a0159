import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { buildAgent } from '../scripts/build-agent.mjs';
import { startFleetEnv, type DeviceCredentials, type FleetEnv } from './harness/broker-env.js';
import { grantedQos, inbox, within } from './harness/broker-probe.js';
import { postJson } from './harness/https-client.js';
import { tempDir } from './harness/temp-dir.js';

const BUNDLE = 'tlsfleet-agent.mjs';
const DEVICE = 'bundle-device-1';

/** One line the agent printed: `{time, event, ...fields}`. */
type AgentEvent = { event: string } & Record<string, unknown>;

interface AgentProcess {
  readonly child: ChildProcess;
  readonly events: AgentEvent[];
  /** Resolves with the first event named `name`, already printed or yet to come; rejects if the agent exits first. */
  event(name: string): Promise<AgentEvent>;
  /** Resolves with the exit status. */
  readonly exited: Promise<number | null>;
  stderr(): string;
}

/**
 * `node <bundle> ...args` with the bundle's directory as cwd and no NODE_PATH, so nothing
 * but the bundle itself and Node's built-ins can be loaded.
 */
function startAgent(bundle: string, args: string[]): AgentProcess {
  const { NODE_PATH: _ignored, ...env } = process.env;
  const child = spawn(process.execPath, [bundle, ...args], { cwd: dirname(bundle), env, stdio: ['ignore', 'pipe', 'pipe'] });
  const events: AgentEvent[] = [];
  const waiters: { name: string; resolve: (e: AgentEvent) => void }[] = [];
  let partial = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const e = JSON.parse(line) as AgentEvent;
      events.push(e);
      for (const w of waiters.filter((w) => w.name === e.event)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = once(child, 'close').then(([code]) => code as number | null);
  return {
    child,
    events,
    exited,
    stderr: () => stderr,
    event(name) {
      const seen = events.find((e) => e.event === name);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ name, resolve });
        void exited.then((code) => reject(new Error(`the agent exited (${code}) before printing "${name}"; stderr:\n${stderr}`)));
      });
    },
  };
}

/** The directories from `dir` up to the root that hold a node_modules Node could resolve from. */
function nodeModulesAbove(dir: string): string[] {
  const found: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules'))) found.push(join(d, 'node_modules'));
    if (dirname(d) === d) return found;
  }
}

describe('the single-file agent bundle on a device without node_modules', () => {
  let env: FleetEnv;
  let checker: DeviceCredentials;
  let device: ReturnType<typeof tempDir>;
  let bundle: string;
  let state: string;
  const agents: AgentProcess[] = [];
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    device = tempDir('tlsfleet-agent-bundle-');
    bundle = join(device.path, BUNDLE);
    state = join(device.path, 'state');
    env = await startFleetEnv();
    checker = await env.enroll('checker', { kind: 'service' });
    await buildAgent(bundle);
  });
  afterAll(async () => {
    for (const a of agents) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
    await Promise.all(agents.map((a) => a.exited));
    for (const c of clients) c.end(true);
    await env?.stop();
    device?.cleanup();
  });

  function agent(args: string[]): AgentProcess {
    const a = startAgent(bundle, args);
    agents.push(a);
    return a;
  }

  it('is one file, in a directory with no node_modules anywhere above it', () => {
    expect(readdirSync(device.path)).toEqual([BUNDLE]);
    expect(nodeModulesAbove(device.path)).toEqual([]);
  });

  it('enrolls with a one-time token and stores identity.json with mode 0600 in a 0700 state directory', async () => {
    const minted = await postJson(`${env.url}/v1/tokens`, { deviceId: DEVICE }, { ca: env.ca, headers: { authorization: `Bearer ${env.adminToken}` } });
    expect(minted.status).toBe(201);
    const enroll = agent(['enroll', '--token', minted.json().token, '--provisioning', env.url, '--state', state, '--bootstrap-ca', join(env.dataDir, 'ca-bundle.pem')]);
    expect(await enroll.exited, enroll.stderr()).toBe(0);
    expect(enroll.events.map((e) => e.event)).toEqual(['enrolled']);
    expect(enroll.events[0]).toMatchObject({ deviceId: DEVICE });
    expect(statSync(join(state, 'identity.json')).mode & 0o777).toBe(0o600);
    expect(statSync(state).mode & 0o777).toBe(0o700);
  });

  it('runs: heartbeats reach a service subscribed to devices/+/#, and SIGTERM stops it with status 0', async () => {
    const service = await env.connect(checker, { clientId: 'checker' });
    clients.push(service);
    const box = inbox(service);
    expect(await grantedQos(service, 'devices/+/#')).toBe(1);

    const run = agent(['run', '--state', state, '--broker', env.brokerUrl, '--heartbeat', '1s']);
    const connected = await within(run.event('connected'), 20_000, 'connected');
    expect(connected).toMatchObject({ sessionPresent: expect.any(Boolean), afterMs: expect.any(Number) });
    const heartbeatOf = (seq: number) => (m: { topic: string; payload: string }) => m.topic === `devices/${DEVICE}/heartbeat` && (JSON.parse(m.payload) as { seq: number }).seq === seq;
    await within(box.next(heartbeatOf(0)), 20_000, 'first heartbeat');
    await within(box.next(heartbeatOf(1)), 20_000, 'second heartbeat');

    run.child.kill('SIGTERM');
    expect(await within(run.exited, 20_000, 'exit after SIGTERM'), run.stderr()).toBe(0);
    expect(run.events.at(-1)).toMatchObject({ event: 'stopped', status: 0 });
    expect(run.events.filter((e) => e.event === 'error')).toEqual([]);
  });
});
