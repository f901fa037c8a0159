import type { AedesPublishPacket, Client, PublishPacket, Subscription } from 'aedes';
import type { BrokerContext } from '../server/broker-context.js';
import { guardOf } from '../server/connection-guard.js';
import { mayPublish, mayReceive, maySubscribe } from '../acl/decide.js';
import { forgetRestored } from '../acl/acl-freshness.js';
import { connackSent } from '../aedes/client-state.js';

/**
 * PUBLISH and will messages. A refusal closes the connection (MQTT 3.1.1 has no negative
 * PUBACK; [MQTT-3.3.5-2]). Aedes passes a null client only for wills of clients on a dead
 * broker of a cluster: with no certificate to bind the identity to, they are refused.
 */
export function authorizePublish(ctx: BrokerContext) {
  return (client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void => {
    const conn = guardOf(client?.conn);
    // Also the will that the close after a revocation would publish.
    if (conn !== undefined && mayPublish(ctx, conn, packet.topic)) {
      ctx.metrics.delivery.received(packet.payload);
      return done(null);
    }
    ctx.metrics.aclDenials.inc({ action: 'publish' });
    ctx.logger.info({ client: client?.id, topic: printable(packet.topic), reason: conn?.aclFrom(ctx.acl).explainPublish(packet.topic) }, 'publish refused');
    done(new Error('publish not authorized'));
  };
}

/**
 * Denied subscriptions get SUBACK 0x80 (a null subscription); an error would disconnect.
 * Aedes also asks here for each stored subscription of a persistent session it restores,
 * before CONNACK: one the policy no longer allows is left out and removed from the store.
 */
export function authorizeSubscribe(ctx: BrokerContext) {
  return (client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void => {
    const conn = guardOf(client.conn);
    if (conn !== undefined && maySubscribe(ctx, conn, sub.topic)) return done(null, sub);
    if (!client.clean && !connackSent(client)) {
      forgetRestored(ctx, client, sub.topic);
      return done(null, null);
    }
    ctx.metrics.aclDenials.inc({ action: 'subscribe' });
    ctx.logger.info({ client: client.id, filter: printable(sub.topic), reason: conn?.aclFrom(ctx.acl).explainSubscribe(sub.topic) }, 'subscription refused');
    done(null, null);
  };
}

/**
 * Every delivery, judged again as it leaves: the certificate still live and the policy in
 * force still letting this identity subscribe to the topic. A subscription the policy stopped
 * allowing is removed at the reload (AclFreshness); this also stops what was queued before
 * for a persistent session, and what a session stored by another cluster instance matches.
 */
export function authorizeForward(ctx: BrokerContext) {
  const tally = ctx.metrics.messageTally;
  return (client: Client, packet: AedesPublishPacket): AedesPublishPacket | null => {
    const conn = guardOf(client.conn);
    if (conn !== undefined && mayReceive(ctx, conn, packet.topic)) {
      tally.out++;
      ctx.metrics.delivery.delivered(packet.payload);
      return packet;
    }
    ctx.metrics.aclDenials.inc({ action: 'receive' });
    ctx.logger.debug({ client: client.id, topic: printable(packet.topic) }, 'delivery refused');
    return null;
  };
}

/** Topics in logs: control characters escaped, length capped. */
function printable(topic: string): string {
  return JSON.stringify(topic.length > 200 ? `${topic.slice(0, 200)}…` : topic);
}
