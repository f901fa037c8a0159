import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';

/**
 * A port free on 127.0.0.1 a moment ago, for peers that need a number in their config
 * (PostgreSQL, Redis, HAProxy, nginx); the caller retries when it is taken meanwhile.
 */
export async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
