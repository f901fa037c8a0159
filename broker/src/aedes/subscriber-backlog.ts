/**
 * Adaptation 8 (aedes/index.ts; client step 4). What Aedes does: each delivery waits for a
 * subscriber whose socket is full, and each publish for all its deliveries. Why we change it:
 * one device that stops reading held a service's fan-out to every device. Upstream:
 * moscajs/aedes#1060 (the drain timeout, which bounds but does not isolate). Record:
 * docs/internals/subscriber-backlog.md.
 */
import type { Duplex } from 'node:stream';
import type { Aedes } from 'aedes';
import type { BrokerContext } from '../server/broker-context.js';
import { guardOf } from '../server/connection-guard.js';
import type { ClientStep } from './client-steps.js';

/** The parts of an Aedes 1.2 client that deliver to it (lib/client.js). */
interface DeliveringClient {
  readonly id: string;
  readonly conn: Duplex;
  deliver0(packet: { qos: number }, cb: () => void): void;
  deliverQoS(packet: { qos: number }, cb: () => void): void;
  waitForDrain(callback: (err?: Error | null, client?: unknown) => void): void;
}

/**
 * Bounds what one slow device costs everyone else. Aedes makes each delivery wait for a
 * subscriber whose socket is full ('drain', cut after drainTimeout), and the publish waits
 * for all its deliveries: one device that stops reading held a service's fan-out to every
 * device for the drain timeout, and again after each reconnect. For device subscribers:
 * - a write that fills the socket no longer holds the publisher: Aedes' drain wait is kept
 *   only to cut a socket that does not drain within the drain timeout;
 * - while more than `maxBacklogBytes` wait to be written to it, QoS 0 messages for it are
 *   dropped (at most once, MQTT 3.1.1 §4.3.1) and a QoS 1/2 delivery disconnects it: a
 *   persistent session keeps that message queued (Aedes queues QoS 1/2 for persistent
 *   subscribers before it delivers) and gets it on reconnect.
 * Services keep Aedes' behaviour: a slow service holds its publishers back, losing nothing.
 * Call once, right after the broker is made; returns the step for each client.
 */
export function boundSubscriberBacklog(aedes: Aedes, ctx: BrokerContext, maxBacklogBytes: number): ClientStep {
  aedes.on('clientError', (_client, err) => {
    if (err.message === 'drain timeout') ctx.metrics.slowSubscriberDisconnects.inc({ reason: 'drain_timeout' });
  });
  return (client, conn) => {
    const guard = guardOf(conn);
    if (guard?.peer.identity.kind === 'device') bound(client as unknown as DeliveringClient, guard.out, ctx, maxBacklogBytes);
  };
}

function bound(client: DeliveringClient, gathered: { bytes: number }, ctx: BrokerContext, maxBacklogBytes: number): void {
  const conn = client.conn;
  /** Bytes written to the connection and not yet handed to the kernel. */
  const behind = () => conn.writableLength + gathered.bytes >= maxBacklogBytes;
  const deliver0 = client.deliver0;
  const deliverQoS = client.deliverQoS;
  const waitForDrain = client.waitForDrain.bind(client);
  client.deliver0 = (packet, cb) => {
    if (!behind()) return deliver0(packet, cb);
    ctx.metrics.slowSubscriberDrops.inc();
    setImmediate(cb);
  };
  client.deliverQoS = (packet, cb) => {
    if (packet.qos === 0 || !behind()) return deliverQoS(packet, cb);
    if (!conn.destroyed) {
      ctx.metrics.slowSubscriberDisconnects.inc({ reason: 'backlog' });
      ctx.logger.info({ client: client.id, backlogBytes: conn.writableLength + gathered.bytes, max: maxBacklogBytes }, 'subscriber too far behind: disconnected');
      conn.destroy();
    }
    setImmediate(cb);
  };
  let waiting = false;
  client.waitForDrain = (callback) => {
    if (!waiting) {
      waiting = true;
      waitForDrain(() => {
        waiting = false;
      });
    }
    setImmediate(callback, null, client);
  };
}
