import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { tool } from './openssl.js';

/** A throwaway PostgreSQL server on 127.0.0.1, started by a test and gone after `stop()`. */
export interface PostgresServer {
  readonly port: number;
  /**
   * Connection string for `database` as the superuser `postgres`; `password` only goes into the
   * URL (trust auth, the default, ignores it; a server started with a password checks it).
   */
  url(database: string, password?: string): string;
  /** Creates an empty database and answers its connection string. */
  createDatabase(name: string): Promise<string>;
  /** Runs SQL with psql (the server's own client) and answers its unaligned output, one row a line, fields split by `|`. */
  query(database: string, sql: string): Promise<string>;
  /** Fast shutdown (SIGINT to the postmaster, by pid), then removes the cluster's directory. */
  stop(): Promise<void>;
}

/** /usr/lib/postgresql/<highest version>/bin, where Debian puts initdb and postgres. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb'))) : [];
  const latest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (latest === undefined) throw new Error(`no PostgreSQL server under ${root}; install the Debian package postgresql (npm test's pretest does)`);
  return join(root, latest, 'bin');
}

/**
 * initdb and postgres refuse to run as root: as root, every server command runs as the
 * `postgres` OS user (runuser), on a directory chowned to it; as anyone else, as that user.
 */
function asServerUser(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

export interface PostgresOptions {
  /** The superuser's password, checked with SCRAM-SHA-256 on every connection; default none (trust). */
  password?: string;
}

/** initdb into a fresh temp dir, then the server on a free loopback port; resolves once it accepts connections. */
export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'tlsfleet-pg-'));
  const dataDir = join(dir, 'data');
  try {
    if (process.getuid?.() === 0) {
      const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
      const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
      if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('no postgres OS user (the Debian package postgresql creates it)');
      chownSync(dir, uid, gid);
    }
    const auth = opts.password === undefined ? ['--auth=trust'] : ['--auth=scram-sha-256', `--pwfile=${passwordFile(dir, opts.password)}`];
    const [initCmd, initArgs] = asServerUser(join(bin, 'initdb'), [
      '-D', dataDir, '-U', 'postgres', ...auth, '--encoding=UTF8', '--locale=C', '--no-sync', '--no-instructions',
    ]);
    const init = spawnSync(initCmd, initArgs, { encoding: 'utf8' });
    if (init.status !== 0) throw new Error(`initdb failed (${init.status}):\n${init.stdout}${init.stderr}`);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  // A free port can be taken between the probe and the bind: try a few.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      const child = await startServer(bin, dataDir, dir, port);
      return running(child, dir, dataDir, port, bin, opts.password);
    } catch (err) {
      if (attempt >= 3 || !/could not bind|Address already in use/i.test(String((err as Error).message))) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
}

async function startServer(bin: string, dataDir: string, socketDir: string, port: number): Promise<ChildProcess> {
  const [cmd, args] = asServerUser(join(bin, 'postgres'), [
    '-D', dataDir,
    '-p', String(port),
    '-c', 'listen_addresses=127.0.0.1',
    '-c', `unix_socket_directories=${socketDir}`,
    '-c', 'max_connections=200',
    // A throwaway cluster: durability buys nothing here, speed does.
    '-c', 'fsync=off',
    '-c', 'synchronous_commit=off',
    '-c', 'full_page_writes=off',
  ]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  try {
    // Readiness is an event: the postmaster logs it once it accepts connections.
    await new Promise<void>((resolve, reject) => {
      const onData = (d: string) => {
        log += d;
        if (log.includes('ready to accept connections')) resolve();
      };
      child.stdout!.setEncoding('utf8').on('data', onData);
      child.stderr!.setEncoding('utf8').on('data', onData);
      void exited.then(([code, signal]) => reject(new Error(`postgres exited (${code ?? signal}) before it was ready:\n${log}`)));
      child.on('error', reject);
    });
    // Then a real probe, bounded: each round is one connection attempt with a 1 s limit.
    for (let i = 0; ; i++) {
      const probe = spawnSync(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-t', '1'], { encoding: 'utf8' });
      if (probe.status === 0) break;
      if (i >= 30) throw new Error(`postgres logged ready but pg_isready says: ${probe.stdout}${probe.stderr}`);
    }
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    throw err;
  }
  return child;
}

/** initdb's --pwfile, in the cluster's own directory (the server user reads it); removed with it. */
function passwordFile(dir: string, password: string): string {
  const file = join(dir, 'superuser-password');
  writeFileSync(file, `${password}\n`, { mode: 0o644 });
  return file;
}

function running(child: ChildProcess, dir: string, dataDir: string, port: number, bin: string, password?: string): PostgresServer {
  const exited = once(child, 'exit');
  const url = (database: string, password?: string) =>
    `postgres://postgres${password === undefined ? '' : `:${encodeURIComponent(password)}`}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  let stopping: Promise<void> | undefined;
  return {
    port,
    url,
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name ${name} is not a plain identifier`);
      await this.query('postgres', `CREATE DATABASE ${name}`);
      return url(name);
    },
    async query(database, sql) {
      const r = await tool(join(bin, 'psql'), ['-X', '-v', 'ON_ERROR_STOP=1', '-At', '-d', url(database, password), '-c', sql]);
      if (r.code !== 0) throw new Error(`psql failed (${r.code}): ${r.stderr}`);
      return r.stdout.trim();
    },
    stop: () =>
      (stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          // The postmaster's own pid (first line of postmaster.pid), not runuser's: SIGINT is its fast shutdown.
          const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
          if (Number.isInteger(pid) && pid > 0) process.kill(pid, 'SIGINT');
          else child.kill('SIGTERM');
          await exited;
        }
        rmSync(dir, { recursive: true, force: true });
      })()),
  };
}
