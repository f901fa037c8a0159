import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

/** A throwaway redis-server on 127.0.0.1, started by a test and gone after `stop()`. */
export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:<port>, or rediss:// when it serves TLS only */
  readonly url: string;
  /** SIGKILL to the server by pid (an outage, not a shutdown); resolves once it exited. */
  kill(): Promise<void>;
  /** Starts it again on the same port and settings after `kill()`; resolves once it answers PING. */
  restart(): Promise<void>;
  /** Runs `redis-cli` against it with these arguments (after `-a`/`--user` when given); its stdout. */
  cli(args: string[], auth?: { user?: string; password: string }): Promise<string>;
  /** SIGTERM to the server by pid, then removes its directory. */
  stop(): Promise<void>;
}

/** TLS material for a Redis that serves TLS only (`--port 0 --tls-port`): its certificate and key, and the CA that verifies it. */
export interface RedisTls {
  certFile: string;
  keyFile: string;
  caFile: string;
  caPem: string;
}

/** One PING over a raw socket (RESP inline command), or over TLS verified with `tls.caPem`; true on +PONG (or -NOAUTH) within `ms`. */
function ping(port: number, ms: number, tls?: RedisTls): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls ? tlsConnect({ port, host: '127.0.0.1', ca: tls.caPem }) : connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    socket.on(tls ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
    socket.setEncoding('utf8').on('data', (d: string) => {
      reply += d;
      // A server with requirepass answers NOAUTH: up all the same.
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG') || reply.startsWith('-NOAUTH'));
    });
    socket.on('error', () => done(false));
  });
}

async function signal(child: ChildProcess, sig: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  process.kill(child.pid!, sig);
  await exited;
}

/**
 * redis-server (Debian package redis-server) on a free loopback port, no persistence; resolves
 * once it answers PING. `args` go to redis-server as they are (`--requirepass`, `--user`);
 * with `tls` it serves TLS only on that port (clients need no certificate).
 */
export async function startRedis(opts: { args?: string[]; tls?: RedisTls } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tlsfleet-redis-'));
  const tls = opts.tls;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const listen = tls
      ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-ca-cert-file', tls.caFile, '--tls-auth-clients', 'no']
      : ['--port', String(port)];
    const args = [...listen, ...(opts.args ?? [])];
    try {
      let child = await startServer(dir, port, args, tls);
      return {
        port,
        url: `${tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
        kill: () => signal(child, 'SIGKILL'),
        async restart() {
          child = await startServer(dir, port, args, tls);
        },
        cli: (cliArgs, auth) =>
          new Promise((resolve, reject) => {
            const login = auth ? [...(auth.user ? ['--user', auth.user] : []), '--pass', auth.password, '--no-auth-warning'] : [];
            const secure = tls ? ['--tls', '--cacert', tls.caFile] : [];
            execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...secure, ...login, ...cliArgs], { timeout: 10_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
          }),
        async stop() {
          await signal(child, 'SIGTERM');
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (err) {
      if (attempt >= 3 || !/Address already in use/i.test(String((err as Error).message))) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
}

async function startServer(dir: string, port: number, args: string[], tls: RedisTls | undefined): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (log += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  let gone: string | undefined;
  void exited.then(([code, signal]) => (gone = `redis-server exited (${code ?? signal}) before it answered PING:\n${log}`));
  const spawnError = new Promise<never>((_, reject) =>
    child.on('error', (err) => reject(new Error(`redis-server did not start (${err.message}); install the Debian package redis-server (npm test's pretest does)`))),
  );
  // Bounded: each round is one real PING with a 200 ms limit, at most 50 rounds.
  const ready = (async () => {
    for (let i = 0; i < 50; i++) {
      if (gone) throw new Error(gone);
      if (await ping(port, 200, tls)) return;
      if (gone) throw new Error(gone);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`redis-server on ${port} never answered PING:\n${log}`);
  })();
  try {
    await Promise.race([ready, spawnError]);
    return child;
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    throw err;
  }
}
