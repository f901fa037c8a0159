import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleetEnv, type FleetEnv } from './harness/broker-env.js';
import { within } from './harness/broker-probe.js';
import { recipe, REPO_ROOT } from './harness/readme.js';
import { tempDir } from './harness/temp-dir.js';

// The newcomer's path, run as written in README.md and docs/guides/device-lifecycle.md:
// a device publishing, a service reading it, a command sent, a renewal watched, a revoked
// device re-admitted. The recipes name `npm start`'s addresses; only those are rewritten
// to this test's own ports and data dir.

let env: FleetEnv;
let work: { path: string; cleanup: () => void };
const running: Background[] = [];

beforeAll(async () => {
  env = await startFleetEnv();
  work = tempDir('tlsfleet-recipes-');
  // As in the checkout, where `npx tlsfleet` finds the workspace's bin.
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(work.path, 'node_modules'));
  writeFileSync(join(work.path, 'package.json'), '{"private":true}\n');
}, 60_000);

afterAll(async () => {
  for (const b of running) await b.stop();
  await env?.stop();
  work?.cleanup();
});

/** `npm start`'s addresses and data dir in a recipe, replaced by this test's; each must occur, or the recipe changed under the test. */
function localized(name: string): string {
  const script = recipe(name);
  const broker = new URL(env.brokerUrl);
  const out = script
    .replaceAll('https://localhost:8443', env.url)
    .replaceAll('mqtts://localhost:8883', env.brokerUrl)
    .replaceAll('-h localhost -p 8883', `-h ${broker.hostname} -p ${broker.port}`)
    .replace(/(^|[\s"'=:-])\.tlsfleet(?=[/\s"'}]|$)/gm, `$1${env.dataDir}`);
  expect(out, `recipe:${name} names no npm start address`).not.toBe(script);
  expect(out).not.toMatch(/localhost:(8443|8883)|-p 8883/);
  return out;
}

async function run(name: string, extraEnv: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('bash', ['-euo', 'pipefail', '-c', localized(name)], { cwd: work.path, env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = (await within(once(child, 'close'), 90_000, `recipe:${name}`)) as [number | null];
  return { code, stdout, stderr };
}

interface Background {
  lines: string[];
  /** The first line (already printed or still to come) that `match` accepts. */
  line(match: (line: string) => boolean, ms: number, what: string): Promise<string>;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** A recipe that keeps running (an agent, a subscriber), in its own process group so stop() ends npx and what it started. */
function start(name: string): Background {
  const child: ChildProcess = spawn('bash', ['-euo', 'pipefail', '-c', localized(name)], { cwd: work.path, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let err = '';
  const waiters = new Set<() => void>();
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const b: Background = {
    lines,
    exited,
    line(match, ms, what) {
      const found = new Promise<string>((resolve, reject) => {
        const check = () => {
          const hit = lines.find(match);
          if (hit !== undefined) {
            waiters.delete(check);
            resolve(hit);
          }
        };
        waiters.add(check);
        check();
        void exited.then((code) => {
          waiters.delete(check);
          reject(new Error(`recipe:${name} exited with ${code} before ${what}:\n${lines.join('\n')}\n${err}`));
        });
      });
      return within(found, ms, `recipe:${name}: ${what}\n${lines.join('\n')}\n${err}`);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGTERM');
      await exited;
    },
  };
  running.push(b);
  return b;
}

type AgentLine = { event: string; [field: string]: unknown };
const event = (name: string, test: (l: AgentLine) => boolean = () => true) => (line: string) => {
  if (!line.startsWith('{')) return false;
  const parsed = JSON.parse(line) as AgentLine;
  return parsed.event === name && test(parsed);
};
const parse = (line: string) => JSON.parse(line) as AgentLine;

describe("README's first device, services and commands", () => {
  let agent: Background;

  it('enrolls sensor-1 with the agent, which connects and sends heartbeats', async () => {
    agent = start('first-device-agent');
    const connected = parse(await agent.line(event('connected'), 60_000, 'the agent connected'));
    expect(connected.serial).toMatch(/^[0-9A-F]+$/i);
  });

  it('enrolls my-device by hand with openssl and curl, and publishes as it', async () => {
    const est = await run('est-enroll');
    expect(est.code, est.stderr).toBe(0);
    expect(est.stdout + est.stderr).toContain('spiffe://tlsfleet.local/device/my-device');
  });

  it('a service watches devices/+/#, sees both devices, and sends sensor-1 a command that the agent prints', async () => {
    const enrolled = await run('service-enroll');
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const watch = start('service-watch');
    const presence = start('service-presence');
    await watch.line((l) => l.startsWith('devices/sensor-1/heartbeat {'), 30_000, 'a heartbeat from sensor-1');
    const published = await run('first-device-publish');
    expect(published.code, published.stderr).toBe(0);
    expect(await watch.line((l) => l.startsWith('devices/my-device/telemetry '), 15_000, 'my-device telemetry')).toBe('devices/my-device/telemetry {"t":21.5}');
    // mosquitto_pub connects, publishes and disconnects: presence shows both ends. mosquitto_sub
    // says nothing once subscribed, so my-device publishes again until the watcher has seen it.
    const seen = (l: string) => l.startsWith('$tlsfleet/events/connected/my-device {');
    for (let attempt = 0; attempt < 10 && !presence.lines.some(seen); attempt++) {
      expect((await run('first-device-publish')).code).toBe(0);
      await presence.line(seen, 3000, 'my-device connected').catch(() => undefined);
    }
    const came = await presence.line(seen, 1000, 'my-device connected');
    expect(JSON.parse(came.slice(came.indexOf(' ') + 1))).toMatchObject({ type: 'connected', id: 'my-device', kind: 'device' });
    const went = await presence.line((l) => l.startsWith('$tlsfleet/events/disconnected/my-device {'), 15_000, 'my-device disconnected');
    expect(JSON.parse(went.slice(went.indexOf(' ') + 1))).toMatchObject({ type: 'disconnected', id: 'my-device', reason: 'client' });

    const sent = await run('service-command');
    expect(sent.code, sent.stderr).toBe(0);
    const command = parse(await agent.line(event('command'), 15_000, 'the command line'));
    expect(command).toMatchObject({ topic: 'commands/blink', payload: '{"times":3}' });
    // The service sees it too: it may read devices/+/#, commands included.
    await watch.line((l) => l === 'devices/sensor-1/commands/blink {"times":3}', 15_000, 'the command on the watch');
  });
});

describe('docs/guides/device-lifecycle.md', () => {
  it('watches a 30-second certificate renew and the agent reconnect with it', async () => {
    const agent = start('watch-renewal');
    const first = parse(await agent.line(event('connected'), 60_000, 'connected'));
    const renewed = parse(await agent.line(event('renewed'), 60_000, 'renewed'));
    expect(renewed.serial).not.toBe(first.serial);
    expect(renewed.deviceId).toBe('thermo-1');
    await agent.line(event('connected', (l) => l.serial === renewed.serial), 30_000, 'connected with the renewed certificate');
    await agent.stop();
  }, 150_000);

  it('revokes sensor-1 through the admin API: the running agent stops with exit status 3; a new token re-admits it', async () => {
    const agent = running.find((b) => b.lines.some(event('connected')) && b.lines.some(event('command')));
    expect(agent, 'the README agent from the first describe').toBeDefined();
    const revoked = await run('revoke-device');
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ deviceId: 'sensor-1', revoked: [expect.any(String)] });
    const told = parse(await agent!.line(event('reenrollment-required'), 30_000, 'reenrollment-required'));
    expect(told.code).toBe('revoked');
    expect(await within(agent!.exited, 15_000, 'the agent exits')).toBe(3);

    const back = start('readmit-device');
    const reenrolling = parse(await back.line(event('reenrolling'), 60_000, 'reenrolling'));
    expect(reenrolling.reason).toBe('revoked');
    const enrolled = parse(await back.line(event('enrolled'), 60_000, 'enrolled'));
    expect(enrolled.replaced).toBe(reenrolling.serial);
    const connected = parse(await back.line(event('connected'), 60_000, 'connected again'));
    expect(connected.serial).toBe(enrolled.serial);
  }, 150_000);
});
