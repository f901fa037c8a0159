import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** ioredis connection options taken from a redis:// or rediss:// URL. */
export interface RedisConnection {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
  tls?: Record<string, never>;
}

/**
 * Parses `redis://[user:password@]host[:port][/db]` (or `rediss://` for TLS). Throws a
 * message that never repeats the password.
 */
export function parseRedisUrl(raw: string): RedisConnection {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('--cluster must be a redis://host:port URL');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error('--cluster must be a redis:// or rediss:// URL');
  if (!url.hostname) throw new Error('--cluster URL has no host');
  const port = url.port === '' ? 6379 : Number(url.port);
  const path = url.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,2}$/.test(path)) throw new Error('--cluster URL path must be a database number (redis://host:port/0)');
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(path !== '' ? { db: Number(path) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
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

export interface RedisCluster {
  /** Aedes' `mq`: messages and $SYS broker announcements (takeovers) shared by every instance. */
  mq: unknown;
  /** Subscriptions, retained messages, sessions' queues and wills shared through Redis. */
  persistence: unknown;
}

/** mqemitter-redis and aedes-persistence-redis on one Redis server. */
export function redisCluster(conn: RedisConnection, onError: (err: Error) => void): RedisCluster {
  const mqemitterRedis = require('mqemitter-redis') as (opts: object) => { state: NodeJS.EventEmitter };
  const persistenceRedis = require('aedes-persistence-redis') as (opts: object) => unknown;
  // A command waits through at most 20 reconnects (ioredis' backoff) before it fails.
  const common = { ...conn, maxRetriesPerRequest: 20 };
  const mq = mqemitterRedis({ ...common });
  // ioredis reconnects by itself; unheard, mqemitter-redis' connection errors would crash the process.
  mq.state.on('error', onError);
  return { mq, persistence: persistenceRedis({ ...common }) };
}
