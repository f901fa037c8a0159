/**
 * Adaptation 5 (aedes/index.ts). What Aedes does: it restores a persistent session's
 * subscriptions before it writes CONNACK, so a message routed in between goes out first. Why
 * we change it: [MQTT-3.2.0-1]; mqtt.js stalls behind it and Paho refuses the connection.
 * Upstream: moscajs/aedes#80. Record: docs/internals/connack-first.md.
 */
import type { Client } from 'aedes';

/** Aedes' per-client delivery functions, which a session's subscriptions capture when made. */
type Deliver = (packet: unknown, done: () => void) => void;
interface Deliveries {
  deliverQoS: Deliver;
  deliver0: Deliver;
  connackSent: boolean;
}
interface Held {
  deliver: Deliver;
  packet: unknown;
  done: () => void;
}

/**
 * [MQTT-3.2.0-1] The first packet the server sends is CONNACK. Aedes restores a persistent
 * session's subscriptions before it writes CONNACK, so a message routed in between went out
 * first. mqtt.js then queues its PUBACK behind the CONNACK it has not read yet and stalls
 * until its connect timeout (10 s: at 160 msg/s the rolling-restart test's subscriber came
 * back with ~1,600 messages queued); Paho refuses the connection outright.
 *
 * `hold(client)`, called from preConnect (before the session is restored), makes deliveries
 * to that client wait; `release` (Aedes' 'connackSent') sends them, in order, right after
 * CONNACK. A connection that ends first lets them go undelivered, as any closed connection
 * would: a persistent session still has them queued.
 */
export class ConnackFirst {
  private readonly waiting = new WeakMap<Client, Held[]>();

  hold(client: Client): void {
    const c = client as unknown as Deliveries;
    const held: Held[] = [];
    this.waiting.set(client, held);
    const later = (deliver: Deliver): Deliver => (packet, done) => {
      if (c.connackSent || this.waiting.get(client) !== held) deliver(packet, done);
      else held.push({ deliver, packet, done });
    };
    c.deliverQoS = later(c.deliverQoS);
    c.deliver0 = later(c.deliver0);
    client.conn.once('close', () => {
      if (this.waiting.get(client) !== held) return;
      this.waiting.delete(client);
      for (const h of held) h.done();
    });
  }

  readonly release = (connack: { returnCode?: number }, client: Client): void => {
    const held = this.waiting.get(client);
    if (!held) return;
    this.waiting.delete(client);
    // A refusing CONNACK is followed by the close [MQTT-3.2.2-5], never by messages.
    for (const h of held) (connack.returnCode ? h.done() : h.deliver(h.packet, h.done));
  };
}
