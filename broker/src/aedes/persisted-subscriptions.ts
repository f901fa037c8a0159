/**
 * Part of adaptation 4 (aedes/index.ts), for the publish relay (publish-relay.ts). What Aedes
 * does: it finds the persistent sessions a QoS 1 message must be queued for with the
 * persistence's `subscriptionsByTopic`, which answers only through a promise. Why we change
 * it: the relay decides in the turn it reads, so it needs the same answer at once. Upstream:
 * none (the persistence API is asynchronous by design). Record: docs/internals/publish-relay.md.
 */
import { createRequire } from 'node:module';

/** One QoS 1/2 subscription of a persistent session, as aedes-persistence's trie holds it. */
export interface PersistedSubscription {
  readonly clientId: string;
  readonly topic: string;
  readonly qos: number;
}

/** The slice of aedes-persistence (11.0.0, in-memory) whose calls are mirrored. */
interface SubscriptionStore {
  addSubscriptions(client: { id: string }, subs: readonly { topic: string; qos: number }[]): Promise<void>;
  removeSubscriptions(client: { id: string }, topics: readonly string[]): Promise<void>;
  cleanSubscriptions(client: { id: string }): Promise<void>;
}

interface Trie {
  add(topic: string, sub: PersistedSubscription): void;
  remove(topic: string, sub: { clientId: string; topic: string }): void;
  match(topic: string): PersistedSubscription[];
}

/** The matcher and options aedes-persistence 11 builds its own trie with. */
const QlobberSub = createRequire(import.meta.url)('qlobber/aedes/qlobber-sub') as new (options: object) => Trie;
const QLOBBER_OPTIONS = { wildcard_one: '+', wildcard_some: '#', separator: '/' };

/** What the persistence's `subscriptionsByTopic(topic)` would answer, at once. */
export interface PersistedSubscriptions {
  match(topic: string): PersistedSubscription[];
}

/**
 * Mirrors, call for call, how aedes-persistence 11's in-memory store keeps its trie of QoS
 * 1/2 subscriptions: every add, remove and clean updates the mirror in the same call, as the
 * store's own synchronous bodies update its trie. The store's answers are unchanged.
 */
export function mirrorPersistedSubscriptions(persistence: unknown): PersistedSubscriptions {
  const store = persistence as SubscriptionStore;
  const trie = new QlobberSub(QLOBBER_OPTIONS);
  const byClient = new Map<string, Map<string, number>>();
  const add = store.addSubscriptions.bind(store);
  const remove = store.removeSubscriptions.bind(store);
  const clean = store.cleanSubscriptions.bind(store);
  store.addSubscriptions = (client, subs) => {
    let stored = byClient.get(client.id);
    if (stored === undefined) byClient.set(client.id, (stored = new Map()));
    for (const sub of subs) {
      const before = stored.get(sub.topic);
      if (sub.qos > 0) trie.add(sub.topic, { clientId: client.id, topic: sub.topic, qos: sub.qos });
      else if (before !== undefined && before > 0) trie.remove(sub.topic, { clientId: client.id, topic: sub.topic });
      stored.set(sub.topic, sub.qos);
    }
    return add(client, subs);
  };
  store.removeSubscriptions = (client, topics) => {
    const stored = byClient.get(client.id);
    if (stored !== undefined) {
      for (const topic of topics) {
        const qos = stored.get(topic);
        if (qos === undefined) continue;
        if (qos > 0) trie.remove(topic, { clientId: client.id, topic });
        stored.delete(topic);
      }
      if (stored.size === 0) byClient.delete(client.id);
    }
    return remove(client, topics);
  };
  store.cleanSubscriptions = (client) => {
    const stored = byClient.get(client.id);
    if (stored !== undefined) {
      for (const [topic, qos] of stored) if (qos > 0) trie.remove(topic, { clientId: client.id, topic });
      byClient.delete(client.id);
    }
    return clean(client);
  };
  return { match: (topic) => trie.match(topic) };
}
