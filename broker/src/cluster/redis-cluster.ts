import { createRequire } from 'node:module';
import { Redis } from 'ioredis';

const require = createRequire(import.meta.url);

/** ioredis connection options taken from a redis:// or rediss:// URL. */
export interface RedisConnection {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  /** rediss://: TLS 1.2+, the server verified against `ca` (PEM) when given, else Node's CA store. */
  tls?: { minVersion: 'TLSv1.2'; ca?: string };
}

/**
 * Parses `redis://[user:password@]host[:port][/db]` (or `rediss://` for TLS, verified against
 * `ca` when given). Throws a message that never repeats the password.
 */
export function parseRedisUrl(raw: string, ca?: string): RedisConnection {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('--cluster must be a redis://host:port URL');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error('--cluster must be a redis:// or rediss:// URL');
  if (!url.hostname) throw new Error('--cluster URL has no host');
  if (ca !== undefined && url.protocol !== 'rediss:') throw new Error('--cluster-ca applies to a rediss:// (TLS) --cluster URL only');
  const port = url.port === '' ? 6379 : Number(url.port);
  const path = url.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,2}$/.test(path)) throw new Error('--cluster URL path must be a database number (redis://host:port/0)');
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(path !== '' ? { db: Number(path) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: { minVersion: 'TLSv1.2' as const, ...(ca === undefined ? {} : { ca }) } } : {}),
  };
}

/** The URL with any password replaced, for logs. */
export function redactRedisUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(invalid URL)';
  }
}

/** Why the broker could not start on its Redis; the message names the URL without its password. */
export class ClusterStartError extends Error {
  readonly code = 'cluster_unavailable';
  constructor(readonly reason: 'timeout' | 'refused' | 'aborted', message: string) {
    super(message);
    this.name = 'ClusterStartError';
  }
}

export interface RedisLinkEvents {
  /** Every connection is ready (true) or one of them is not (false); called on each change. */
  onLink(up: boolean): void;
  /** A connection error, once per distinct message until the link is back; none after `disconnect()`. */
  onError(message: string): void;
}

export interface RedisCluster {
  /** Aedes' `mq`: messages and $SYS broker announcements (takeovers) shared by every instance. */
  readonly mq: unknown;
  /** Subscriptions, retained messages, sessions' queues and wills shared through Redis. */
  readonly persistence: unknown;
  /** True while every connection to Redis is ready. */
  isUp(): boolean;
  /**
   * Resolves with `work` once it settles; rejects with a ClusterStartError (after dropping every
   * connection) when Redis refuses the credentials, `deadlineMs` passes or `signal` aborts first.
   */
  startWithin<T>(work: () => Promise<T>, deadlineMs: number, signal?: AbortSignal): Promise<T>;
  /** How many messages wait in a client's queue (aedes-persistence-redis' `outgoing:<id>` list). */
  queueLength(clientId: string): Promise<number>;
  /** Stops reporting link changes and errors: the broker is closing its connections itself. */
  closing(): void;
  /**
   * QUIT on every connection, so commands already sent (PUBACK bookkeeping) complete; drops
   * what is left after `graceMs`. A dropped command's rejection is unhandled in Aedes and
   * aedes-persistence-redis, and would end the process with exit 1.
   */
  close(graceMs: number): Promise<void>;
  /** Drops every connection now. QUIT, what the libraries' own close() sends, never completes while Redis is away. */
  disconnect(): void;
}

// Replies that no retry will change: the start-up fails at once instead of waiting out its deadline.
const FATAL_REPLY = /^(WRONGPASS|NOAUTH|NOPERM|ERR (invalid password|AUTH|DB index))/;
/** Node's codes for a Redis server certificate that does not verify (no retry will change them either), and what to do. */
const UNTRUSTED_CERTIFICATE: ReadonlyMap<string, string> = new Map([
  ...['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE'].map(
    (code) => [code, 'give the CA that issued it with --cluster-ca'] as const,
  ),
  ['ERR_TLS_CERT_ALTNAME_INVALID', 'the --cluster host must be one of its subjectAltName names or addresses'],
  ['CERT_HAS_EXPIRED', 'it is past its notAfter'],
  ['CERT_NOT_YET_VALID', 'it is before its notBefore'],
]);

/**
 * mqemitter-redis and aedes-persistence-redis on one Redis server, through three ioredis
 * connections (subscriber, publisher, commands) this module owns, so it can watch and drop them.
 */
export function redisCluster(url: string, events: RedisLinkEvents, opts: { ca?: string } = {}): RedisCluster {
  const conn = parseRedisUrl(url, opts.ca);
  const redacted = redactRedisUrl(url);
  const mqemitterRedis = require('mqemitter-redis') as (opts: object) => { state: NodeJS.EventEmitter };
  const persistenceRedis = require('aedes-persistence-redis') as (opts: object) => unknown;
  const connect = () => {
    // A command waits through at most 20 reconnects (ioredis' backoff, up to 2 s apart) before it fails.
    const c = new Redis({ ...conn, maxRetriesPerRequest: 20 });
    // aedes-persistence-redis fires some commands without awaiting them (delWill's and putWill's
    // LREM, a replay's LREM of a vanished packet). One that fails, because Redis is away or
    // because a client was still connecting when SIGTERM's QUIT went out, was an unhandled
    // rejection: exit 1 instead of 0 in about one rolling restart in five. Callers that await
    // a command still get its error.
    const send = c.sendCommand.bind(c);
    c.sendCommand = (command, stream) => {
      command.promise?.catch(() => undefined);
      return send(command, stream);
    };
    return c;
  };
  const connections = { sub: connect(), pub: connect(), commands: connect() };
  const all = Object.values(connections);
  const isUp = () => all.every((c) => c.status === 'ready');

  let up = false;
  let dropped = false;
  let lastError: string | undefined;
  // Distinct messages since the link was last up: ioredis retries every ≤ 2 s on each connection.
  const reported = new Set<string>();
  let fatal: ((message: string) => void) | undefined;
  const onChange = () => {
    if (dropped || isUp() === up) return;
    up = !up;
    if (up) {
      lastError = undefined;
      reported.clear();
    }
    events.onLink(up);
  };
  for (const c of all) {
    c.on('ready', onChange);
    c.on('close', onChange);
    // ioredis reconnects by itself; an unheard 'error' would crash the process. Only the
    // message is passed on: a ReplyError also carries the command and its arguments.
    c.on('error', (err: Error) => {
      if (dropped) return;
      if (FATAL_REPLY.test(err.message)) fatal?.(`refused the connection: ${err.message}`);
      const code = (err as NodeJS.ErrnoException).code ?? '';
      const hint = UNTRUSTED_CERTIFICATE.get(code);
      if (hint) fatal?.(`presented a TLS certificate this broker does not accept: ${err.message} (${code}); ${hint}`);
      lastError = err.message;
      if (reported.has(err.message)) return;
      reported.add(err.message);
      events.onError(err.message);
    });
  }
  const mq = mqemitterRedis({ subConn: connections.sub, pubConn: connections.pub });
  // mqemitter-redis re-emits its connections' errors, already heard above.
  mq.state.on('error', () => undefined);
  // Its default maxSessionDelivery (1,000) replays only the first 1,001 queued messages when a
  // session resumes and leaves the rest in Redis until its next reconnect, if any; a session
  // that dropped with messages in flight has more than the offline bound queued. The
  // in-memory persistence replays the whole queue: so does this.
  const persistence = persistenceRedis({ conn: connections.commands, maxSessionDelivery: Number.MAX_SAFE_INTEGER });
  const disconnect = () => {
    dropped = true;
    for (const c of all) c.disconnect();
  };

  return {
    mq,
    persistence,
    isUp,
    disconnect,
    queueLength: (clientId) => connections.commands.llen(`outgoing:${encodeURIComponent(clientId)}`),
    closing: () => {
      dropped = true;
    },
    close: async (graceMs) => {
      dropped = true;
      const quits = all.map((c) => (c.status === 'end' ? Promise.resolve() : c.quit().then(() => undefined, () => undefined)));
      await Promise.race([Promise.all(quits), new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
      disconnect();
    },
    startWithin: (work, deadlineMs, signal) =>
      new Promise((resolve, reject) => {
        const fail = (reason: ClusterStartError['reason'], message: string) => {
          cleanup();
          disconnect();
          reject(new ClusterStartError(reason, message));
        };
        const onAbort = () => fail('aborted', `start-up stopped while waiting for Redis at ${redacted}`);
        const timer = setTimeout(() => {
          const cause = lastError === undefined ? '' : ` (last error: ${lastError})`;
          fail('timeout', `Redis at ${redacted} did not answer within ${deadlineMs / 1000} s (--cluster-timeout)${cause}`);
        }, deadlineMs);
        const cleanup = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          fatal = undefined;
        };
        fatal = (message) => fail('refused', `Redis at ${redacted} ${message}`);
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
        work().then(
          (value) => {
            cleanup();
            resolve(value);
          },
          (err: unknown) => fail('refused', `Redis at ${redacted} failed during start-up: ${(err as Error).message}`),
        );
      }),
  };
}
