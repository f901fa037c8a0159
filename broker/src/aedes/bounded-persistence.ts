/**
 * Adaptation 4 (aedes/index.ts). What Aedes does: it queues QoS 1/2 messages for an offline
 * persistent session without limit. Why we change it: one device that never comes back would
 * grow the broker without bound. Upstream: moscajs/aedes#1087. Record:
 * docs/internals/offline-queue-bound.md.
 */
import memoryPersistence from 'aedes-persistence';

interface Sub {
  clientId: string;
}

/** The slice of aedes-persistence this wrapper touches; Aedes 1.x uses the promise forms. */
interface OutgoingQueue {
  outgoingEnqueue(sub: Sub, packet: unknown): Promise<void>;
  outgoingEnqueueCombi(subs: Sub[], packet: unknown): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: unknown): Promise<unknown>;
}

/**
 * Aedes' in-memory persistence with each client's outgoing QoS 1/2 queue bounded: Aedes
 * queues messages for offline persistent sessions without limit, so one device that
 * never comes back would grow the broker without bound. Past `maxQueued` messages for one
 * client, further messages for it while it is offline are dropped and reported. Messages
 * to a connected client are never dropped here (Aedes expects them in the queue).
 * In a cluster the count is this instance's, and only an upper bound: a message this
 * instance enqueued is acknowledged, and cleared, on whichever instance the client is
 * connected to. So before dropping, the count is re-read from the shared queue
 * (`queueLength`); counting alone dropped every message for a persistent subscriber once
 * 1,000 had ever passed through, lost at its next reconnect.
 */
export function boundedPersistence(
  maxQueued: number,
  isConnected: (clientId: string) => boolean,
  onDrop: (clientId: string) => void,
  /** The persistence to wrap (aedes-persistence-redis in a cluster); default Aedes' in-memory one. */
  base?: unknown,
  /** The true length of a client's shared queue (a cluster); default: this instance's count is exact. */
  queueLength?: (clientId: string) => Promise<number>,
): unknown {
  const persistence = (base as OutgoingQueue | undefined) ?? (memoryPersistence as unknown as () => OutgoingQueue)();
  const queued = new Map<string, number>();
  const enqueue = persistence.outgoingEnqueue.bind(persistence);
  const enqueueCombi = persistence.outgoingEnqueueCombi.bind(persistence);
  const clear = persistence.outgoingClearMessageId.bind(persistence);
  const add = (clientId: string) => queued.set(clientId, (queued.get(clientId) ?? 0) + 1);

  persistence.outgoingEnqueue = (sub, packet) => {
    add(sub.clientId);
    return enqueue(sub, packet);
  };
  // Aedes' path for subscribers that are not connected. Aedes also routes here around a
  // reconnect; a connected client's message must stay.
  const mayBeFull = (clientId: string) => (queued.get(clientId) ?? 0) >= maxQueued && !isConnected(clientId);
  const isFull = async (clientId: string, length: (clientId: string) => Promise<number>): Promise<boolean> => {
    if (!mayBeFull(clientId)) return false;
    const n = await length(clientId);
    queued.set(clientId, n);
    return n >= maxQueued;
  };
  const keep = (subs: Sub[], full: readonly boolean[]) =>
    subs.filter((sub, i) => {
      if (full[i]) {
        onDrop(sub.clientId);
        return false;
      }
      add(sub.clientId);
      return true;
    });
  persistence.outgoingEnqueueCombi = (subs, packet) => {
    // In one process the count is exact and the queues change within this call, as the
    // in-memory store's own do: the publish relay (publish-relay.ts) relies on it.
    if (queueLength === undefined) return enqueueCombi(keep(subs, subs.map((sub) => mayBeFull(sub.clientId))), packet);
    return Promise.all(subs.map((sub) => isFull(sub.clientId, queueLength))).then((full) => enqueueCombi(keep(subs, full), packet));
  };
  persistence.outgoingClearMessageId = async (client, packet) => {
    const removed = await clear(client, packet);
    if (removed) {
      const n = (queued.get(client.id) ?? 1) - 1;
      if (n <= 0) queued.delete(client.id);
      else queued.set(client.id, n);
    }
    return removed;
  };
  return persistence;
}
