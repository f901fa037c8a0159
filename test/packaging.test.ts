import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './harness/temp-dir.js';

// The release as a user gets it: the workspaces packed with `npm pack`, the CLI installed
// with `npm install -g --prefix` into an empty prefix, and run from there, far from this
// checkout's node_modules. Third-party packages come from the registry (npm's cache
// first); better-sqlite3 compiles from source for the running Node, which takes minutes.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORKSPACES = ['common', 'device-sdk', 'provisioning', 'broker', 'simulators', 'cli'];
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const MINUTE = 60_000;

/** The running Node first on PATH, and its own headers for node-gyp, so npm, native builds and the CLI's `#!/usr/bin/env node` all use this Node. */
function nodeEnv(extraPath: string[] = []): NodeJS.ProcessEnv {
  const nodeDir = dirname(process.execPath);
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: [...extraPath, nodeDir, process.env.PATH ?? ''].join(':'), npm_config_update_notifier: 'false' };
  const install = dirname(nodeDir);
  if (existsSync(join(install, 'include/node/node_version.h'))) env.npm_config_nodedir = install;
  return env;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, killed after `timeoutMs`. */
async function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Run> {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeoutMs, killSignal: 'SIGKILL' });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** A long-running installed command, resolved once stdout has a line for which `ready` answers. */
async function start(cmd: string, args: string[], ready: (line: Record<string, unknown>) => string | undefined, opts: { cwd: string; env: NodeJS.ProcessEnv }) {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = once(child, 'exit') as Promise<[number | null]>;
  const answer = await new Promise<string>((resolveReady, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      for (const line of out.split('\n').filter((l) => l.startsWith('{'))) {
        try {
          const found = ready(JSON.parse(line) as Record<string, unknown>);
          if (found !== undefined) return resolveReady(found);
        } catch {
          // A line still being written.
        }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    void exited.then(([code]) => reject(new Error(`${args.join(' ')} exited with ${code} before it was ready:\n${out}`)));
  });
  return {
    answer,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return (await exited)[0];
    },
  };
}

/** Every file below `dir`, as paths relative to it. */
function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

/** Bytes of every file below `dir`. */
function bytesBelow(dir: string): number {
  return filesBelow(dir).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
}

const tmp = tempDir('tlsfleet-packaging-');
const tarballs = new Map<string, string>(); // workspace → .tgz path
const unpacked = new Map<string, string>(); // workspace → its extracted package/ dir

beforeAll(async () => {
  const dest = join(tmp.path, 'tarballs');
  mkdirSync(dest);
  const packed = await run('npm', ['pack', '--json', '--pack-destination', dest, ...WORKSPACES.flatMap((w) => ['--workspace', w])], { cwd: ROOT, env: nodeEnv(), timeoutMs: 2 * MINUTE });
  expect(packed.code, packed.stderr).toBe(0);
  const results = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { name: string; filename: string }[];
  for (const ws of WORKSPACES) {
    const name = (JSON.parse(readFileSync(join(ROOT, ws, 'package.json'), 'utf8')) as { name: string }).name;
    const tgz = join(dest, results.find((r) => r.name === name)!.filename);
    const into = join(tmp.path, 'unpacked', ws);
    mkdirSync(into, { recursive: true });
    const untar = await run('tar', ['-xzf', tgz, '-C', into], { cwd: tmp.path, env: process.env, timeoutMs: MINUTE });
    expect(untar.code, untar.stderr).toBe(0);
    tarballs.set(ws, tgz);
    unpacked.set(ws, join(into, 'package'));
  }
}, 3 * MINUTE);

afterAll(() => tmp.cleanup());

describe('the packed workspaces', () => {
  it('each tarball carries the LICENSE, the shared version and its sources, and no test, fixture or benchmark', () => {
    const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
    expect(license).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    for (const ws of WORKSPACES) {
      const dir = unpacked.get(ws)!;
      expect(readFileSync(join(dir, 'LICENSE'), 'utf8'), ws).toBe(license);
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string; license: string; engines?: { node?: string } };
      expect(manifest, ws).toMatchObject({ version: VERSION, license: 'Apache-2.0', engines: { node: '>=20.10' } });
      const files = filesBelow(dir);
      expect(files.filter((f) => /\.test\.|\.fixture\.|(^|\/)bench\//.test(f)), ws).toEqual([]);
      expect(files.some((f) => f.startsWith('dist/') && f.endsWith('.js')), ws).toBe(true);
    }
  });

  it('every export, bin and source map points at a file inside the tarball', () => {
    for (const ws of WORKSPACES) {
      const dir = unpacked.get(ws)!;
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { exports: Record<string, Record<string, string>>; bin?: Record<string, string> };
      const targets = [...Object.values(manifest.exports).flatMap((conditions) => Object.values(conditions)), ...Object.values(manifest.bin ?? {})];
      for (const target of targets) expect(existsSync(join(dir, target)), `${ws}: ${target}`).toBe(true);
      const maps = filesBelow(dir).filter((f) => f.endsWith('.map'));
      expect(maps.length, ws).toBeGreaterThan(0);
      for (const map of maps) {
        const { sources, sourceRoot } = JSON.parse(readFileSync(join(dir, map), 'utf8')) as { sources: string[]; sourceRoot?: string };
        for (const source of sources) {
          const file = resolve(dir, dirname(map), sourceRoot ?? '', source);
          expect(file.startsWith(dir + '/') && existsSync(file), `${ws}/${map} → ${source}`).toBe(true);
        }
      }
    }
    const bin = readFileSync(join(unpacked.get('cli')!, 'bin/tlsfleet.js'), 'utf8');
    expect(bin.startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('the device SDK installs into an empty project under 15 MB with no server package, declares its Node, and loads', async () => {
    const app = join(tmp.path, 'sdk-app');
    mkdirSync(app);
    const sdk = JSON.parse(readFileSync(join(unpacked.get('device-sdk')!, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(sdk).toMatchObject({ engines: { node: '>=20.10' }, publishConfig: { access: 'public' } });
    expect(readFileSync(join(unpacked.get('device-sdk')!, 'README.md'), 'utf8')).toMatch(/^# @tlsfleet\/device-sdk/);
    const installed = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', tarballs.get('common')!, tarballs.get('device-sdk')!], { cwd: app, env: nodeEnv(), timeoutMs: 5 * MINUTE });
    expect(installed.code, installed.stderr).toBe(0);
    const modules = join(app, 'node_modules');
    const present = readdirSync(modules).flatMap((n) => (n.startsWith('@') ? readdirSync(join(modules, n)).map((s) => `${n}/${s}`) : [n]));
    for (const server of ['express', 'aedes', 'better-sqlite3', 'pg', 'pino', 'prom-client', 'ioredis', '@tlsfleet/provisioning', '@tlsfleet/broker']) expect(present, server).not.toContain(server);
    expect(bytesBelow(modules)).toBeLessThan(15 * 1024 * 1024);
    const load = await run(process.execPath, ['--input-type=module', '-e', "const sdk = await import('@tlsfleet/device-sdk'); const agent = await import('@tlsfleet/device-sdk/agent'); console.log(typeof sdk.createDevice, Object.keys(agent).length > 0)"], { cwd: app, env: nodeEnv(), timeoutMs: MINUTE });
    expect(load.stderr).toBe('');
    expect(load.stdout.trim()).toBe('function true');
  }, 6 * MINUTE);

  it('the CLI installs with npm install -g into an empty prefix, and init, provisioning, broker and an enrollment run from there', async () => {
    const prefix = join(tmp.path, 'prefix');
    const work = join(tmp.path, 'work');
    mkdirSync(work);
    const all = WORKSPACES.map((w) => tarballs.get(w)!);
    // better-sqlite3's install script compiles SQLite (no prebuilt binary is fetched here).
    const installed = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', '--allow-scripts=better-sqlite3', ...all], { cwd: work, env: nodeEnv(), timeoutMs: 15 * MINUTE });
    expect(installed.code, installed.stdout + installed.stderr).toBe(0);
    const tlsfleet = join(prefix, 'bin', 'tlsfleet');
    expect(existsSync(join(prefix, 'lib/node_modules/@tlsfleet/cli/bin/tlsfleet.js'))).toBe(true);
    const env = nodeEnv([join(prefix, 'bin')]);
    const cli = (args: string[]) => run(tlsfleet, args, { cwd: work, env, timeoutMs: 2 * MINUTE });

    const version = await cli(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: `tlsfleet ${VERSION}\n` });

    const dataDir = join(work, 'data');
    const init = await cli(['init', '--data-dir', dataDir]);
    expect(init.code, init.stderr).toBe(0);
    const token = await cli(['token', '--data-dir', dataDir, '--device', 'packaged-1']); // the store, through the compiled better-sqlite3
    expect(token.code, token.stderr).toBe(0);

    const listening = (msg: string) => (line: Record<string, unknown>) => (line.msg === msg && typeof line.url === 'string' ? line.url : undefined);
    const provisioning = await start(tlsfleet, ['provisioning', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0'], listening('provisioning listening'), { cwd: work, env });
    const broker = await start(tlsfleet, ['broker', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0', '--health-port', '0'], listening('broker listening'), { cwd: work, env });
    try {
      const state = join(work, 'device');
      const enroll = await cli(['device', 'enroll', '--token', token.stdout.trim(), '--provisioning', provisioning.answer, '--state', state, '--bootstrap-ca', join(dataDir, 'ca-bundle.pem')]);
      expect(enroll.code, enroll.stderr).toBe(0);
      expect(JSON.parse(enroll.stdout)).toMatchObject({ event: 'enrolled', deviceId: 'packaged-1' });
      const agent = await start(tlsfleet, ['device', 'run', '--state', state, '--broker', broker.answer], (line) => (line.event === 'connected' ? String(line.serial) : undefined), { cwd: work, env });
      expect(agent.answer).toMatch(/^[0-9a-f]+$/);
      expect(await agent.stop()).toBe(0);
    } finally {
      expect(await broker.stop()).toBe(0);
      expect(await provisioning.stop()).toBe(0);
    }
  }, 20 * MINUTE);
});
