import type { Aedes } from 'aedes';
import type { Logger } from 'pino';
import type { RedisCluster } from '../cluster/redis-cluster.js';
import type { Listeners } from './listeners.js';
import type { SessionRegistry } from './session-registry.js';
import type { Presence } from '../presence/presence-events.js';

/**
 * Stops the broker within about `graceMs`: no new connections, watchers stopped, presence
 * events for every session, sessions closed by Aedes (or cut at the grace), the cluster's Redis connections closed, and the
 * health port answering /readyz 503 for `healthLingerMs` so that load balancers see the
 * drain before it goes.
 */
export async function drain(b: {
  aedes: Aedes;
  listeners: Listeners;
  sessions: SessionRegistry;
  presence: Presence;
  cluster: RedisCluster | undefined;
  /** Stops the file watchers and CRL sources. */
  stopWatching: () => void;
  healthLingerMs: number;
  logger: Logger;
}, graceMs: number): Promise<void> {
  const { aedes, listeners, cluster } = b;
  listeners.startDraining();
  b.stopWatching();
  listeners.listener.close();
  listeners.wsServer?.close();
  // Every session still open ends because the broker stops: watchers (here and on other
  // instances) learn it before the emitter closes with the sessions.
  await Promise.race([b.presence.shutdown(), delay(graceMs / 2)]);
  b.sessions.clear();
  // Aedes closes the mq last, with QUITs that never complete while Redis is away.
  if (cluster) {
    cluster.closing();
    aedes.once('closed', () => {
      if (!cluster.isUp()) cluster.disconnect();
    });
  }
  await Promise.race([new Promise<void>((resolve) => aedes.close(() => resolve())), delay(graceMs)]);
  // A connection still before CONNACK would go on talking to Redis after the QUIT below.
  for (const conn of listeners.conns) conn.destroy();
  // aedes.close closes the mq (mqemitter-redis) but not the persistence's Redis connection.
  // Not the persistence's destroy(): it drops its connection with commands still pending.
  if (cluster) await cluster.close(1000);
  // Load balancers poll /readyz: keep answering 503 a moment so they see the drain.
  const health = listeners.health;
  if (health) {
    await delay(b.healthLingerMs);
    const closed = new Promise<void>((resolve) => health.close(() => resolve()));
    health.closeIdleConnections();
    await Promise.race([closed, delay(1000)]);
    health.closeAllConnections();
  }
  b.logger.info('broker stopped');
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
