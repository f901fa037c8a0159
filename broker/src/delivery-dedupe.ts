import type { Aedes, AedesPublishPacket, Client } from 'aedes';

/**
 * What Aedes' client.duplicates becomes: every read is 0 and every write is dropped, so
 * Aedes' own de-duplication lets every delivery through to authorizeForward.
 */
const NOTHING_SEEN: Record<string, number> = new Proxy(Object.create(null) as Record<string, number>, {
  get: () => 0,
  set: () => true,
});

/**
 * Aedes numbers each publish (brokerCounter) when broker.publish starts, and drops a
 * delivery whose number is not above the last one the client got from that broker. That
 * high-water mark is meant for overlapping subscriptions (one message matching two of a
 * client's filters), but publishes are not emitted in the order they are numbered: a
 * retained one waits for its store, a QoS 1 one for the offline queues of persistent
 * subscribers — a Redis round trip each in a cluster. Any publish emitted meanwhile raises
 * the mark, and the waiting one is then dropped for every live subscriber that got it
 * (measured here: a retained message followed by any other publish never reached a live
 * subscriber on the other broker of a cluster, nor on one broker when both came in one
 * read; a QoS 1 message to a persistent subscriber was lost amid QoS 0 traffic).
 * So the check becomes equality with the last delivery from that broker: the copies of one
 * message to one client's overlapping subscriptions are delivered one after the other in
 * a single emit, so a repeat is still dropped, and a late message is not. It runs in
 * authorizeForward, Aedes' documented hook at that same point, ahead of the broker's own.
 * Call once, right after the broker is made.
 */
export function deduplicateDeliveries(aedes: Aedes): void {
  const lastFrom = new WeakMap<Client, Map<string, number>>();
  aedes.on('client', (client) => {
    (client as Client & { duplicates: Record<string, number> }).duplicates = NOTHING_SEEN;
  });
  const forward = aedes.authorizeForward.bind(aedes);
  aedes.authorizeForward = (client: Client, packet: AedesPublishPacket) => {
    // brokerId is null on retained messages sent for a SUBSCRIBE, which Aedes does not de-duplicate either.
    const { brokerId, brokerCounter } = packet;
    if (brokerId) {
      let last = lastFrom.get(client);
      if (last === undefined) lastFrom.set(client, (last = new Map()));
      if (last.get(brokerId) === brokerCounter) return null;
      last.set(brokerId, brokerCounter);
    }
    return forward(client, packet);
  };
}
