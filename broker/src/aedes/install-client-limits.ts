/**
 * Adaptation 7 (aedes/index.ts). What Aedes does: it bounds inbound QoS 2 messages per
 * connection only, and subscriptions and retained messages not at all. Why we change it: one
 * identity could make the broker hold without bound, and a reconnect resets a per-connection
 * bound. Upstream: Aedes' own window is moscajs/aedes#1154. Record: docs/internals/client-limits.md.
 */
import type { Aedes, Client, PublishPacket, Subscription } from 'aedes';
import type { BrokerContext } from '../server/broker-context.js';
import { detachedPayload, LIMIT_FLAGS, type ClientLimits, type LimitName } from '../limits/client-limits.js';
import { RetainedLedger } from '../limits/retained-ledger.js';
import { persistenceOf, registeredClients, subscriptionFilters } from './client-state.js';

/** The parts of Aedes' persistence (aedes-persistence 11, aedes-persistence-redis 12) wrapped here. */
interface LimitedPersistence {
  addSubscriptions(client: { id: string }, subs: Subscription[]): Promise<void>;
  storeRetained(packet: ReadPublish): Promise<void>;
  incomingStorePacket(client: { id: string }, packet: ReadPublish): Promise<void>;
  incomingDelPacket(client: { id: string }, packet: { messageId?: number }): Promise<void>;
  cleanIncoming?(client: { id: string }): Promise<void>;
}

/** A PUBLISH as the parser (and Aedes' Packet) carries it: the payload is always a Buffer. */
type ReadPublish = PublishPacket & { payload: Buffer };
type SubscribeDone = (err: Error | null, sub?: Subscription | null) => void;
type PublishDone = (err?: Error | null) => void;

/** What the limits hold now, for the metrics' gauges. */
export interface LimitState {
  subscriptions(): number;
  retainedBytes(): number;
  retainedMessages(): number;
  inflightQos2(): number;
}

/**
 * Bounds what one identity can make the broker hold (docs/security.md): subscriptions
 * (SUBACK 0x80 past the cap [MQTT-3.9.3]), retained messages and inbound QoS 2 messages
 * awaiting PUBREL. MQTT 3.1.1 has no negative PUBACK or PUBREC: a refused PUBLISH may be
 * acknowledged and dropped, or its connection closed [MQTT-3.3.5-2]. Closing is chosen, as
 * for an ACL refusal: a device that believed its state retained when it was not would be
 * wrong silently, while a close is seen (and retried) by the device and counted here.
 * Wraps the hooks Aedes calls on the instance, after the ACL's, and its persistence
 * methods. Call once, right after the broker is made.
 */
export function installClientLimits(aedes: Aedes, ctx: BrokerContext, limits: Readonly<ClientLimits>): LimitState {
  const persistence = persistenceOf<LimitedPersistence>(aedes);
  const refuse = (client: { id: string } | null, limit: LimitName, detail: Record<string, unknown>) => {
    ctx.metrics.limitRefusals.inc({ limit });
    ctx.logger.info({ client: client?.id, limit, flag: LIMIT_FLAGS[limit], ...detail }, 'per-client limit reached: refused');
  };
  capSubscriptions(aedes, persistence, limits.maxSubscriptions, refuse);
  const retained = accountRetained(aedes, persistence, new RetainedLedger(limits.maxRetainedBytes, limits.maxRetainedMessages), refuse);
  const inflight = boundInflightQos2(aedes, persistence, limits.maxInflightQos2, refuse);
  aedes.on('clientError', (client, err) => {
    // Aedes' own per-connection window, set to the same value (lib/handlers/publish.js).
    if (err.message.startsWith('maxInflightInbound exceeded')) refuse(client, 'inflight_qos2', { max: limits.maxInflightQos2 });
  });
  return {
    subscriptions: () => {
      let n = 0;
      for (const client of registeredClients(aedes)) n += subscriptionFilters(client).length;
      return n;
    },
    retainedBytes: () => retained.bytes,
    retainedMessages: () => retained.messages,
    inflightQos2: inflight,
  };
}

type Refuse = (client: { id: string } | null, limit: LimitName, detail: Record<string, unknown>) => void;

/**
 * At most `max` distinct filters per session; a SUBSCRIBE for a filter the session holds
 * already replaces it and costs nothing. Aedes judges a packet's filters concurrently, so
 * filters granted and not yet added count too. Aedes stores every filter of a persistent
 * session's SUBSCRIBE as soon as one is granted (lib/handlers/subscribe.js
 * storeSubscriptions), refused ones and ones not judged yet included: only filters granted
 * here reach the store (each granted one's own store call follows its grant).
 */
function capSubscriptions(aedes: Aedes, persistence: LimitedPersistence, max: number, refuse: Refuse): void {
  const granted = new WeakSet<Subscription>();
  const pending = new WeakMap<Client, Set<string>>();
  const admits = (client: Client, filter: string): boolean => {
    const held = (client as Client & { subscriptions: Record<string, unknown> }).subscriptions;
    if (filter in held) return true;
    let granted = pending.get(client);
    if (granted) for (const f of granted) if (f in held) granted.delete(f);
    if (granted?.has(filter)) return true;
    if (Object.keys(held).length + (granted?.size ?? 0) >= max) return false;
    if (!granted) pending.set(client, (granted = new Set()));
    granted.add(filter);
    return true;
  };
  const authorize = aedes.authorizeSubscribe.bind(aedes);
  aedes.authorizeSubscribe = (client: Client, sub: Subscription, done: SubscribeDone) => {
    authorize(client, sub, (err, allowed) => {
      if (err || !allowed) return done(err, allowed);
      if (admits(client, allowed.topic)) {
        granted.add(sub);
        return done(null, allowed);
      }
      refuse(client, 'subscriptions', { filter: allowed.topic.slice(0, 200), max });
      done(null, null);
    });
  };
  const add = persistence.addSubscriptions.bind(persistence);
  persistence.addSubscriptions = async (client, subs) => {
    const kept = subs.filter((sub) => granted.has(sub));
    if (kept.length > 0) await add(client, kept);
  };
}

/**
 * Checks a retained PUBLISH (and a retained will) against its sender's share before Aedes
 * stores it, and books it at once, so that the messages of one read, judged before any of
 * them is stored, cannot pass the cap together. The store keeps its own copy of the payload.
 */
function accountRetained(aedes: Aedes, persistence: LimitedPersistence, ledger: RetainedLedger, refuse: Refuse): RetainedLedger {
  /** Payloads of retained messages booked to their sender (the store sees the same Buffer). */
  const booked = new WeakSet<Buffer>();
  const authorize = aedes.authorizePublish.bind(aedes);
  aedes.authorizePublish = (client: Client | null, published: PublishPacket, done: PublishDone) => {
    const packet = published as ReadPublish;
    authorize(client, packet, (err) => {
      if (err || !packet.retain || !client) return done(err);
      const limit = ledger.refusal(client.id, packet.topic, packet.payload.length);
      if (limit) {
        refuse(client, limit, { topic: packet.topic.slice(0, 200), payloadBytes: packet.payload.length, held: ledger.heldBy(client.id) });
        return done(new Error(`per-client limit reached: ${limit}`));
      }
      ledger.set(client.id, packet.topic, packet.payload.length);
      booked.add(packet.payload);
      done(null);
    });
  };
  const store = persistence.storeRetained.bind(persistence);
  persistence.storeRetained = (packet) => {
    // The broker's own retained messages (none today) are counted, against no identity.
    if (!booked.has(packet.payload)) ledger.set(undefined, packet.topic, packet.payload.length);
    return store(Object.assign(packet, { payload: detachedPayload(packet.payload) }));
  };
  return ledger;
}

/**
 * At most `max` inbound QoS 2 messages per identity stored awaiting PUBREL. Aedes bounds
 * them per connection only (maxInflightInbound), and a persistent session keeps them across
 * connections, so a client reconnecting with fresh packet identifiers could fill all 65,535
 * of them; counted here by identity. A refusal fails the store, and Aedes closes the
 * connection (lib/handlers/publish.js). Returns the count of stored messages.
 */
function boundInflightQos2(aedes: Aedes, persistence: LimitedPersistence, max: number, refuse: Refuse): () => number {
  (aedes as unknown as { maxInflightInbound: number }).maxInflightInbound = max;
  const stored = new Map<string, Set<number>>();
  let total = 0;
  const storePacket = persistence.incomingStorePacket.bind(persistence);
  persistence.incomingStorePacket = async (client, packet) => {
    const id = packet.messageId as number;
    let ids = stored.get(client.id);
    if (!ids?.has(id)) {
      if ((ids?.size ?? 0) >= max) {
        refuse(client, 'inflight_qos2', { max });
        throw new Error(`per-client limit reached: inflight_qos2 (${max} QoS 2 messages await PUBREL)`);
      }
      if (!ids) stored.set(client.id, (ids = new Set()));
      ids.add(id);
      total++;
    }
    await storePacket(client, Object.assign(packet, { payload: detachedPayload(packet.payload) }));
  };
  const forget = (clientId: string, id: number) => {
    const ids = stored.get(clientId);
    if (!ids?.delete(id)) return;
    total--;
    if (ids.size === 0) stored.delete(clientId);
  };
  const delPacket = persistence.incomingDelPacket.bind(persistence);
  persistence.incomingDelPacket = async (client, packet) => {
    await delPacket(client, packet);
    forget(client.id, packet.messageId as number);
  };
  const clean = persistence.cleanIncoming?.bind(persistence);
  if (clean) {
    persistence.cleanIncoming = async (client) => {
      await clean(client);
      total -= stored.get(client.id)?.size ?? 0;
      stored.delete(client.id);
    };
  }
  return () => total;
}
