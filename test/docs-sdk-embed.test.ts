import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mintToken, startFleetEnv, type FleetEnv } from './harness/broker-env.js';
import { inbox } from './harness/broker-probe.js';
import { recipe, REPO_ROOT } from './harness/readme.js';
import { tempDir } from './harness/temp-dir.js';

const run = promisify(execFile);

// device-sdk/README.md's embedding example, as a reader would use it: compiled by tsc in an
// application of its own whose node_modules holds the SDK (its real package exports, built
// dist/ and .d.ts), then run with node against a real provisioning service and broker.

/** An application directory holding the recipe as embed.ts, with the SDK and Node's types installed by symlink. */
function application(dir: string): void {
  writeFileSync(join(dir, 'embed.ts'), recipe('sdk-embed'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'embed-app', private: true, type: 'module' }));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      extends: join(REPO_ROOT, 'tsconfig.base.json'),
      compilerOptions: { composite: false, declaration: false, declarationMap: false, sourceMap: false, rootDir: '.', outDir: 'out', typeRoots: [join(dir, 'node_modules', '@types')] },
      files: ['embed.ts'],
    }),
  );
  mkdirSync(join(dir, 'node_modules', '@tlsfleet'), { recursive: true });
  mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
  symlinkSync(join(REPO_ROOT, 'device-sdk'), join(dir, 'node_modules', '@tlsfleet', 'device-sdk'), 'dir');
  symlinkSync(join(REPO_ROOT, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'), 'dir');
}

/** Every stdout line of `child`, kept; `next` resolves with the first (seen or to come) that `match` accepts, or rejects if the process exits first. */
function stdoutLines(child: ChildProcess): { next(match: (line: string) => boolean): Promise<string> } {
  const seen: string[] = [];
  const waiters: { match: (line: string) => boolean; resolve: (line: string) => void; reject: (err: Error) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    seen.push(line);
    for (const w of [...waiters]) {
      if (!w.match(line)) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(line);
    }
  });
  child.once('exit', (code) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`the example exited (${code}) before printing the line expected; it printed: ${seen.join(' | ')}`));
  });
  return {
    next: (match) => {
      const found = seen.find(match);
      if (found !== undefined) return Promise.resolve(found);
      if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error(`the example has exited; it printed: ${seen.join(' | ')}`));
      return new Promise((resolve, reject) => waiters.push({ match, resolve, reject }));
    },
  };
}

describe("device-sdk/README.md's embedding example", () => {
  let env: FleetEnv;
  let app: { path: string; cleanup: () => void };
  let child: ChildProcess | undefined;
  let service: MqttClient | undefined;

  beforeEach(async () => {
    app = tempDir('tlsfleet-embed-');
    env = await startFleetEnv();
  });

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    child = undefined;
    await service?.endAsync(true);
    service = undefined;
    await env.stop();
    app.cleanup();
  });

  it('compiles against the package exports, enrolls, publishes, receives a command and stops on SIGTERM', async () => {
    application(app.path);
    const tsc = await run(join(REPO_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(app.path, 'tsconfig.json')], { timeout: 120_000 }).catch((err: { stdout?: string; stderr?: string }) => err);
    expect(`${tsc.stdout ?? ''}${tsc.stderr ?? ''}`, 'tsc on the README example').toBe('');

    service = await env.connect(await env.enroll('embed-watcher', { kind: 'service' }));
    const box = inbox(service);
    await service.subscribeAsync('devices/embed-1/#', { qos: 1 });

    const token = await mintToken(env, 'embed-1', 'device', 3600);
    child = spawn(process.execPath, [join(app.path, 'out', 'embed.js')], {
      cwd: app.path,
      env: {
        ...process.env,
        TLSFLEET_STATE: join(app.path, 'state'),
        TLSFLEET_BROKER: env.brokerUrl,
        TLSFLEET_PROVISIONING: env.url,
        TLSFLEET_BOOTSTRAP_CA: env.caFile,
        TLSFLEET_TOKEN: token,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    const out = stdoutLines(child);

    expect(await out.next((l) => l.startsWith('enrolled as '))).toMatch(/^enrolled as embed-1 until /);
    await out.next((l) => l.startsWith('connected with certificate '));
    const reading = await box.next((m) => m.topic === 'devices/embed-1/telemetry');
    expect(JSON.parse(reading.payload)).toEqual({ t: 21.5 });
    expect(reading.qos).toBe(1);

    const command = out.next((l) => l.startsWith('command '));
    await service.publishAsync('devices/embed-1/commands/reboot', 'now', { qos: 1 });
    expect(await command).toBe('command commands/reboot now');

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
