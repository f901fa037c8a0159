/**
 * Adaptation 12 (aedes/index.ts). What Aedes does: nothing times a connect. Why we change it:
 * the CONNECT-to-CONNACK histogram (metrics only) needs the first hook that sees CONNECT, so
 * `preConnect` is wrapped. Upstream: none.
 */
import type { Aedes, Client, ConnectPacket } from 'aedes';
import type { Histogram } from 'prom-client';

/**
 * Times each accepted connection from its CONNECT packet (Aedes' preConnect, the first hook
 * that sees it) to the CONNACK written ('connackSent'; Aedes emits it for accepted
 * connections only: a refusal's CONNACK is followed by the close). Once per connection, so
 * prom-client is called directly.
 */
export function timeConnects(aedes: Aedes, histogram: Histogram): void {
  const started = new WeakMap<Client, number>();
  const preConnect = aedes.preConnect.bind(aedes);
  aedes.preConnect = (client: Client, packet: ConnectPacket, done: (err: Error | null, ok: boolean) => void) => {
    started.set(client, performance.now());
    preConnect(client, packet, done);
  };
  aedes.on('connackSent', (_packet, client: Client) => {
    const at = started.get(client);
    if (at === undefined) return;
    started.delete(client);
    histogram.observe((performance.now() - at) / 1000);
  });
}
