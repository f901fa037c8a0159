import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A server process the benchmark started and will stop, by its pid. */
export interface BenchServer {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  stop(): Promise<void>;
}

/** Every process started here and not yet seen to exit: stopAll() ends them by pid. */
const running = new Set<ChildProcess>();

const STARTUP_MS = 15_000;
const STOP_GRACE_MS = 10_000;

/** Starts `script` (a file beside this one) with node and waits for its "listening PORT" line. */
export async function startNodeServer(name: string, script: string, args: readonly string[], nodeArgs: readonly string[] = []): Promise<BenchServer> {
  const child = track(spawn(process.execPath, [...nodeArgs, fileURLToPath(new URL(script, import.meta.url)), ...args], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${STARTUP_MS} ms`)), STARTUP_MS);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before listening`));
    };
    child.once('exit', onExit);
    // Read to the end so the child never blocks on a full pipe (stdout to a pipe is
    // synchronous in Node), but keep only what comes before the ready line.
    let listening = false;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      if (listening) return;
      out += chunk;
      const m = /listening (\d+)\n/.exec(out);
      if (!m) return;
      listening = true;
      out = '';
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(Number(m[1]));
    });
  });
  return server(name, child, port);
}

/** The mosquitto binary: $MOSQUITTO, /usr/sbin/mosquitto, or mosquitto on PATH; undefined when none runs or MOSQUITTO=none. */
export function findMosquitto(): { bin: string; version: string } | undefined {
  if (process.env.MOSQUITTO === 'none') return undefined;
  for (const bin of [process.env.MOSQUITTO, '/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', 'mosquitto']) {
    if (!bin) continue;
    if (bin.includes('/')) {
      try {
        accessSync(bin, constants.X_OK);
      } catch {
        continue;
      }
    }
    const probe = spawnSync(bin, ['-h'], { encoding: 'utf8', timeout: 5000 });
    const version = /mosquitto version (\S+)/.exec(`${probe.stdout}${probe.stderr}`)?.[1];
    if (version) return { bin, version };
  }
  return undefined;
}

/**
 * mosquitto on 127.0.0.1 with the broker's certificate and trust bundle, a client
 * certificate required, TLS 1.2+, the certificate CN as the username (our device ids
 * and service names are the CN), and an ACL file equal to the default policy of docs/reference/mqtt.md, so
 * that it does per-message authorization work as ours does. No persistence.
 */
/** `caFile` replaces the data dir's ca-bundle.pem as mosquitto's `cafile`. */
export async function startMosquitto(bin: string, dataDir: string, workDir: string, caFile = join(dataDir, 'ca-bundle.pem')): Promise<BenchServer> {
  const port = await freePort();
  const aclFile = join(workDir, 'mosquitto.acl');
  writeFileSync(aclFile, ['pattern readwrite devices/%u/#', 'user telemetry', 'topic read devices/+/#', 'topic write devices/+/commands/#', ''].join('\n'));
  const conf = join(workDir, `mosquitto-${port}.conf`);
  writeFileSync(
    conf,
    [
      'per_listener_settings false',
      'allow_anonymous false',
      `acl_file ${aclFile}`,
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      // Run as whoever runs the benchmark: it must read the data dir's 0600 key. Root
      // otherwise means a switch to the "mosquitto" user, which cannot.
      `user ${process.getuid?.() === 0 ? 'root' : (process.env.USER ?? 'mosquitto')}`,
      `listener ${port} 127.0.0.1`,
      `cafile ${caFile}`,
      `certfile ${join(dataDir, 'broker.pem')}`,
      `keyfile ${join(dataDir, 'broker.key')}`,
      'require_certificate true',
      'use_identity_as_username true',
      'tls_version tlsv1.2',
      '',
    ].join('\n'),
  );
  const child = track(spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let probing = true;
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.split('\n')) {
      if (!line || /should not be run as root/.test(line)) continue;
      // The readiness probe below connects over plain TCP and hangs up without a handshake.
      if (probing && /unexpected eof while reading/.test(line)) continue;
      process.stderr.write(`mosquitto: ${line}\n`);
    }
  });
  const started = performance.now();
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited (${child.exitCode}) before listening`);
    if (performance.now() - started > STARTUP_MS) throw new Error(`mosquitto did not listen within ${STARTUP_MS} ms`);
    await sleep(50);
  }
  // Its complaint about the probe may come a moment later.
  setTimeout(() => (probing = false), 500).unref();
  return server('mosquitto', child, port);
}

/** Stops every process still running, by pid (SIGTERM, then SIGKILL after a grace). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((child) => stopChild(child)));
}

function track(child: ChildProcess): ChildProcess {
  if (child.pid === undefined) throw new Error('spawn failed');
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

function server(name: string, child: ChildProcess, port: number): BenchServer {
  return { name, pid: child.pid as number, port, stop: () => stopChild(child) };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  process.kill(child.pid as number, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid as number, 'SIGKILL');
  }, STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
