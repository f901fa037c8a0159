import type { Aedes, Client, PublishPacket } from 'aedes';
import type { BrokerContext } from '../server/broker-context.js';
import { guardOf } from '../server/connection-guard.js';
import { markSessionEnd, sessionEndReason, type SessionEndReason } from './session-end.js';
import { SharedIdentityWatch } from './shared-identity.js';

/** Presence events go under this prefix; devices can never read or publish there (common/src/acl.ts). */
export const PRESENCE_TOPIC_PREFIX = '$tlsfleet/events/';

/** One presence event as published (docs/reference/mqtt.md#presence-events). */
export interface PresenceEvent {
  readonly type: 'connected' | 'disconnected';
  readonly id: string;
  readonly kind: string | undefined;
  readonly serial: string | undefined;
  readonly address: string | undefined;
  readonly at: string;
  readonly reason?: SessionEndReason;
}

/**
 * Publishes `$tlsfleet/events/connected/<id>` when a session is accepted and
 * `$tlsfleet/events/disconnected/<id>` when it ends, QoS 1 and not retained, through Aedes:
 * in a cluster the message crosses Redis like any other, and only the instance that held
 * the session publishes, so each event is published once. A session closed before it was
 * announced (an issuer no longer trusted, closed by the step before this one) is not
 * announced either way. Call after the broker's own 'client' handler.
 */
export function announcePresence(aedes: Aedes, ctx: BrokerContext): Presence {
  const announced = new Set<Client>();
  const shared = new SharedIdentityWatch(ctx.now, ({ id, address, previousAddress }) => {
    ctx.metrics.sharedIdentityEvents.inc();
    ctx.logger.warn({ client: id, address, previousAddress }, 'identity used from two addresses within a minute: a shared or cloned certificate?');
  });
  ctx.metrics.sharedIdentityCount = () => shared.sharedCount();
  const publish = (event: PresenceEvent) =>
    new Promise<void>((resolve) => {
      ctx.metrics.presenceEvents.inc({ type: event.type, reason: event.reason ?? '' });
      const packet = { cmd: 'publish', topic: `${PRESENCE_TOPIC_PREFIX}${event.type}/${event.id}`, payload: Buffer.from(JSON.stringify(event)), qos: 1, retain: false, dup: false } as PublishPacket;
      aedes.publish(packet, (err) => {
        if (err) ctx.logger.warn({ err: err.message, client: event.id, type: event.type }, 'presence event not published');
        resolve();
      });
    });
  const event = (type: PresenceEvent['type'], client: Client, reason?: SessionEndReason): PresenceEvent => {
    const guard = guardOf(client.conn);
    return { type, id: client.id, kind: guard?.peer.identity.kind, serial: guard?.peer.serial, address: guard?.clientAddress, at: new Date(ctx.now()).toISOString(), ...(reason === undefined ? {} : { reason }) };
  };
  aedes.on('clientError', (client, err) => {
    if (client) markSessionEnd(client, /keep ?alive timeout/i.test(err.message) ? 'timeout' : 'error');
  });
  aedes.on('client', (client) => {
    if (client.closed) return;
    announced.add(client);
    shared.sessionStarted(client.id, guardOf(client.conn)?.clientAddress);
    void publish(event('connected', client));
  });
  aedes.on('clientDisconnect', (client) => {
    if (!announced.delete(client)) return;
    shared.sessionEnded(client.id, guardOf(client.conn)?.clientAddress);
    void publish(event('disconnected', client, sessionEndReason(client)));
  });
  return {
    async shutdown() {
      shared.close();
      const ending = [...announced];
      announced.clear();
      await Promise.all(ending.map((client) => publish(event('disconnected', client, 'shutdown'))));
    },
  };
}

export interface Presence {
  /**
   * Publishes `disconnected` with reason `shutdown` for every session announced and still
   * open, and resolves once Aedes has handed each on (in a cluster: to Redis). For a drain:
   * once the broker closes its sessions, its emitter closes with them, and events published
   * from their close would not get out. Those sessions are not announced again.
   */
  shutdown(): Promise<void>;
}
