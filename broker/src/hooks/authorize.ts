import type { AedesPublishPacket, Client, PublishPacket, Subscription } from 'aedes';
import type { IdentityAcl } from '@tlsfleet/common';
import type { BrokerContext } from '../server/broker-context.js';
import { guardOf, type ConnectionGuard } from '../server/connection-guard.js';
import { forgetRestored } from '../acl/acl-freshness.js';

/**
 * PUBLISH and will messages. A refusal closes the connection (MQTT 3.1.1 has no negative
 * PUBACK; [MQTT-3.3.5-2]). Aedes passes a null client only for wills of clients on a dead
 * broker of a cluster: with no certificate to bind the identity to, they are refused.
 */
export function authorizePublish(ctx: BrokerContext) {
  return (client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void => {
    const conn = guardOf(client?.conn);
    const acl = conn?.aclFrom(ctx.acl);
    // Also the will that the close after a revocation would publish.
    const allowed = conn !== undefined && isLive(ctx, conn) && (acl?.canPublish(packet.topic) ?? false);
    if (allowed) {
      ctx.metrics.delivery.received(packet.payload);
      return done(null);
    }
    ctx.metrics.aclDenials.inc({ action: 'publish' });
    ctx.logger.info({ client: client?.id, topic: printable(packet.topic), reason: acl?.explainPublish(packet.topic) }, 'publish refused');
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
    const acl = guardOf(client.conn)?.aclFrom(ctx.acl);
    if (acl?.canSubscribe(sub.topic)) return done(null, sub);
    if (!client.clean && !(client as Client & { connackSent: boolean }).connackSent) {
      forgetRestored(ctx, client, sub.topic);
      return done(null, null);
    }
    ctx.metrics.aclDenials.inc({ action: 'subscribe' });
    ctx.logger.info({ client: client.id, filter: printable(sub.topic), reason: acl?.explainSubscribe(sub.topic) }, 'subscription refused');
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
    if (conn !== undefined && isLive(ctx, conn) && mayReceive(conn.aclFrom(ctx.acl), packet.topic)) {
      tally.out++;
      ctx.metrics.delivery.delivered(packet.payload);
      return packet;
    }
    ctx.metrics.aclDenials.inc({ action: 'receive' });
    ctx.logger.debug({ client: client.id, topic: printable(packet.topic) }, 'delivery refused');
    return null;
  };
}

/** Between a revocation (or notAfter) and the session's close, the certificate no longer speaks for anyone. */
function isLive(ctx: BrokerContext, conn: ConnectionGuard): boolean {
  return !ctx.isRevoked(conn.peer.serial) && ctx.now() < conn.peer.notAfterMs;
}

/**
 * The last topic each bound ACL let through: a subscriber gets the same few topics again
 * and again. A reload binds a new IdentityAcl, so an answer never outlives its policy.
 */
const lastReceived = new WeakMap<IdentityAcl, string>();

/** A topic is a filter without wildcards: the identity may receive it when it may subscribe to it. */
function mayReceive(acl: IdentityAcl, topic: string): boolean {
  if (lastReceived.get(acl) === topic) return true;
  if (!acl.canSubscribe(topic)) return false;
  lastReceived.set(acl, topic);
  return true;
}

/** Topics in logs: control characters escaped, length capped. */
function printable(topic: string): string {
  return JSON.stringify(topic.length > 200 ? `${topic.slice(0, 200)}…` : topic);
}
