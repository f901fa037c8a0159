import type { Client, PublishPacket, Subscription } from 'aedes';
import type { BrokerContext } from '../broker-context.js';
import { guardOf } from '../connection-guard.js';

/**
 * PUBLISH and will messages. A refusal closes the connection (MQTT 3.1.1 has no negative
 * PUBACK; [MQTT-3.3.5-2]). Aedes passes a null client only for wills of clients on a dead
 * broker of a cluster: with no certificate to bind the identity to, they are refused.
 */
export function authorizePublish(ctx: BrokerContext) {
  return (client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void => {
    const conn = guardOf(client?.conn);
    const acl = conn?.aclFrom(ctx.acl);
    // Between a revocation (or notAfter) and the session's close, and for the will that
    // close would publish, the certificate no longer speaks for anyone.
    const live = conn !== undefined && !ctx.isRevoked(conn.peer.serial) && ctx.now() < conn.peer.notAfterMs;
    const allowed = live && (acl?.canPublish(packet.topic) ?? false);
    if (allowed) return done(null);
    ctx.metrics.aclDenials.inc({ action: 'publish' });
    ctx.logger.info({ client: client?.id, topic: printable(packet.topic), reason: acl?.explainPublish(packet.topic) }, 'publish refused');
    done(new Error('publish not authorized'));
  };
}

/** Denied subscriptions get SUBACK 0x80 (a null subscription); an error would disconnect. */
export function authorizeSubscribe(ctx: BrokerContext) {
  return (client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void => {
    const acl = guardOf(client.conn)?.aclFrom(ctx.acl);
    if (acl?.canSubscribe(sub.topic)) return done(null, sub);
    ctx.metrics.aclDenials.inc({ action: 'subscribe' });
    ctx.logger.info({ client: client.id, filter: printable(sub.topic), reason: acl?.explainSubscribe(sub.topic) }, 'subscription refused');
    done(null, null);
  };
}

/** Topics in logs: control characters escaped, length capped. */
function printable(topic: string): string {
  return JSON.stringify(topic.length > 200 ? `${topic.slice(0, 200)}…` : topic);
}
