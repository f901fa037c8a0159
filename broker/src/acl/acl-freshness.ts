import type { Aedes, Client, Subscription, UnsubscribePacket } from 'aedes';
import type { Identity } from '@tlsfleet/common';
import type { BrokerContext } from '../server/broker-context.js';
import { persistenceOf, registeredClients, subscriptionFilters } from '../aedes/client-state.js';
import { guardOf } from '../server/connection-guard.js';

/** The slice of Aedes' persistence (aedes-persistence 11 API, promise forms) used here. */
interface StoredSubscriptions {
  subscriptionsByClient(client: { id: string }): Promise<{ topic: string }[]>;
  removeSubscriptions(client: { id: string }, filters: string[]): Promise<void>;
}

/** Offline sessions judged at once on a reload. */
const OFFLINE_BATCH = 100;

/** Where a revoked subscription was: a connected client's, a stored one of an offline persistent session, or one Aedes was restoring at a reconnect. */
export type RevokedFrom = 'live' | 'offline' | 'restored';

/**
 * An ACL change applies to subscriptions already made (docs/security.md): `rejudge`,
 * run after every policy change, removes each live subscription and each stored one of an
 * offline persistent session that the new policy no longer allows, and counts and logs
 * each. A subscription the new policy would allow is never added: the client must
 * subscribe again, as it would after any refusal.
 *
 * Offline sessions are those this broker process served; in a cluster, a session another
 * instance stored is judged when it reconnects (authorizeSubscribe, as Aedes restores
 * it, then forgetRestored) and each delivery is judged again in
 * authorizeForward, so nothing the policy forbids reaches it meanwhile.
 *
 * It also forgets filters a SUBSCRIBE was refused: for a persistent session Aedes 1.2
 * stores every filter of a SUBSCRIBE once any one of them is granted (lib/handlers/
 * subscribe.js storeSubscriptions), and would queue matching messages for it.
 */
export class AclFreshness {
  /** Identities of the persistent sessions served, by clientId; a clean session's CONNECT ends one. */
  private readonly persistent = new Map<string, Identity>();
  private readonly ctx: BrokerContext;
  private readonly aedes: Aedes;

  constructor(ctx: BrokerContext, aedes: Aedes) {
    this.ctx = ctx;
    this.aedes = aedes;
    aedes.on('client', (client) => {
      const identity = guardOf(client.conn)?.peer.identity;
      if (client.clean || identity === undefined) this.persistent.delete(client.id);
      else this.persistent.set(client.id, identity);
    });
    aedes.on('subscribe', (subscriptions: Subscription[], client: Client) => {
      const refused = subscriptions.filter((s) => (s.qos as number) === 128).map((s) => s.topic);
      if (refused.length > 0 && !client.clean) void this.forget(client.id, refused);
    });
  }

  /**
   * Re-judges every live and stored subscription against the policy in force: the live ones
   * at once, before it returns; resolves when the stored ones are done. Never rejects.
   */
  async rejudge(): Promise<void> {
    // Registered clients: Aedes registers one after restoring its session, before CONNACK.
    const clients = registeredClients(this.aedes);
    for (const client of clients) this.rejudgeLive(client);
    const live = new Set(clients.map((c) => c.id));
    const offline = [...this.persistent].filter(([clientId]) => !live.has(clientId));
    // A batch at a time: in a cluster each session is a Redis round trip.
    for (let i = 0; i < offline.length; i += OFFLINE_BATCH) {
      await Promise.all(offline.slice(i, i + OFFLINE_BATCH).map(([clientId, identity]) => this.rejudgeStored(clientId, identity)));
    }
  }

  private rejudgeLive(client: Client): void {
    const guard = guardOf(client.conn);
    if (guard === undefined) return;
    const acl = guard.aclFrom(this.ctx.acl);
    const revoked = subscriptionFilters(client).filter((filter) => !acl.canSubscribe(filter));
    if (revoked.length === 0) return;
    // Without a messageId Aedes sends no UNSUBACK and leaves the stored copy: removed here.
    client.unsubscribe({ unsubscriptions: revoked } as unknown as UnsubscribePacket, () => undefined);
    if (!client.clean) void this.forget(client.id, revoked);
    this.report(client.id, guard.peer.identity, revoked, 'live');
  }

  private async rejudgeStored(clientId: string, identity: Identity): Promise<void> {
    let stored: { topic: string }[];
    try {
      stored = await this.persistence().subscriptionsByClient({ id: clientId });
    } catch (err) {
      this.ctx.logger.error({ client: clientId, err: (err as Error).message }, 'could not read a persistent session\'s subscriptions to judge them against the reloaded ACL');
      return;
    }
    const acl = this.ctx.acl.forIdentity(identity);
    const revoked = stored.map((s) => s.topic).filter((filter) => !acl.canSubscribe(filter));
    if (revoked.length === 0) return;
    await this.forget(clientId, revoked);
    this.report(clientId, identity, revoked, 'offline');
  }

  private forget(clientId: string, filters: string[]): Promise<void> {
    return forgetStored(this.ctx, this.aedes, clientId, filters);
  }

  private report(clientId: string, identity: Identity, filters: string[], from: RevokedFrom): void {
    reportRevoked(this.ctx, clientId, identity, filters, from);
  }

  private persistence(): StoredSubscriptions {
    return persistenceOf<StoredSubscriptions>(this.aedes);
  }
}

/**
 * authorizeSubscribe refused a stored subscription as Aedes restored a persistent session
 * (before CONNACK): Aedes leaves it out of the session but keeps it stored; removed here.
 */
export function forgetRestored(ctx: BrokerContext, client: Client, filter: string): void {
  const identity = guardOf(client.conn)?.peer.identity;
  if (ctx.aedes) void forgetStored(ctx, ctx.aedes, client.id, [filter]);
  if (identity) reportRevoked(ctx, client.id, identity, [filter], 'restored');
}

function reportRevoked(ctx: BrokerContext, clientId: string, identity: Identity, filters: string[], from: RevokedFrom): void {
  for (const filter of filters) {
    ctx.metrics.subscriptionsRevoked.inc({ reason: 'acl' });
    ctx.logger.info({ client: clientId, identity: identity.name, kind: identity.kind, filter: JSON.stringify(filter), session: from, reason: 'acl' }, 'subscription revoked: the ACL policy no longer allows it');
  }
}

async function forgetStored(ctx: BrokerContext, aedes: Aedes, clientId: string, filters: string[]): Promise<void> {
  try {
    await persistenceOf<StoredSubscriptions>(aedes).removeSubscriptions({ id: clientId }, filters);
  } catch (err) {
    ctx.logger.error({ client: clientId, err: (err as Error).message }, 'could not remove a revoked subscription from the session store');
  }
}
