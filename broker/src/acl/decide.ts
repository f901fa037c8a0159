import type { IdentityAcl } from '@tlsfleet/common';
import type { BrokerContext } from '../server/broker-context.js';
import type { ConnectionGuard } from '../server/connection-guard.js';

// The one place that decides what a connection's identity may do now: the ACL policy in
// force, bound to the certificate's identity, and for messages the certificate itself
// still live. The ACL hooks (hooks/authorize.ts) and the publish relay (aedes/publish-relay.ts)
// both ask here, so the two paths cannot drift apart.

/** Between a revocation (or notAfter) and the session's close, the certificate no longer speaks for anyone. */
export function isLive(ctx: BrokerContext, conn: ConnectionGuard): boolean {
  return !ctx.isRevoked(conn.peer.serial) && ctx.now() < conn.peer.notAfterMs;
}

/** Whether `conn` may publish to `topic` now (also a will's topic, as the will is published). */
export function mayPublish(ctx: BrokerContext, conn: ConnectionGuard, topic: string): boolean {
  return isLive(ctx, conn) && conn.aclFrom(ctx.acl).canPublish(topic);
}

/**
 * Whether `conn` may subscribe to `filter`. The certificate's liveness is not asked: a
 * session past it is being closed, and every delivery to it is refused (mayReceive).
 */
export function maySubscribe(ctx: BrokerContext, conn: ConnectionGuard, filter: string): boolean {
  return conn.aclFrom(ctx.acl).canSubscribe(filter);
}

/** Whether a message on `topic` may be delivered to `conn` now. A topic is a filter without wildcards: the identity may receive it when it may subscribe to it. */
export function mayReceive(ctx: BrokerContext, conn: ConnectionGuard, topic: string): boolean {
  return isLive(ctx, conn) && maySubscribeCached(conn.aclFrom(ctx.acl), topic);
}

/**
 * The last topic each bound ACL let through: a subscriber gets the same few topics again
 * and again. A reload binds a new IdentityAcl, so an answer never outlives its policy.
 */
const lastReceived = new WeakMap<IdentityAcl, string>();

function maySubscribeCached(acl: IdentityAcl, topic: string): boolean {
  if (lastReceived.get(acl) === topic) return true;
  if (!acl.canSubscribe(topic)) return false;
  lastReceived.set(acl, topic);
  return true;
}
