import type { Aedes, AedesPublishPacket, Client } from 'aedes';
import { topicMatchesFilter } from '@tlsfleet/common';

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
 * delivery whose number is not above the last one the client got from that broker: a
 * high-water mark meant for overlapping subscriptions (one message matching two of a
 * client's filters). But publishes are not emitted in the order they are numbered: a
 * retained one waits for its store, a QoS 1 one for the offline queues of persistent
 * subscribers — a Redis round trip each in a cluster. Any publish emitted meanwhile raises
 * the mark, and the waiting one is dropped for every live subscriber that got it
 * (measured: a retained message followed by any other publish never reached a live
 * subscriber on the other broker of a cluster, nor on one broker when both came in one
 * read; a QoS 1 message for a live persistent subscriber on the other broker, whenever a
 * QoS 0 publish of the same broker went out during its queue write to Redis).
 *
 * So a delivery is dropped only when it repeats the client's previous one: the copies of
 * one message for a client's overlapping filters come one after the other, in one emit.
 * A repeat still goes through when those filters differ in QoS, because Aedes delivers
 * each copy at its own filter's QoS and the first may be the lower: a QoS 1 command to a
 * device subscribed to `devices/d1/#` at QoS 0 and `devices/d1/commands/#` at QoS 1
 * reached it at QoS 0 only, against [MQTT-3.3.5-1]; §3.3.5 allows the extra copy.
 * This runs in authorizeForward, Aedes' documented hook at that point, ahead of the
 * broker's own. Call once, right after the broker is made.
 */
export function deduplicateDeliveries(aedes: Aedes): void {
  const previous = new WeakMap<Client, { brokerId: string; brokerCounter: number }>();
  // From the connection on: a persistent session's subscriptions are restored before 'client'.
  const handle = aedes.handle;
  aedes.handle = (conn, req) => {
    const client = handle(conn, req);
    (client as Client & { duplicates: Record<string, number> }).duplicates = NOTHING_SEEN;
    return client;
  };
  const forward = aedes.authorizeForward.bind(aedes);
  aedes.authorizeForward = (client: Client, packet: AedesPublishPacket) => {
    // brokerId is null on retained messages sent for a SUBSCRIBE, which Aedes does not de-duplicate either.
    const { brokerId, brokerCounter } = packet;
    if (brokerId) {
      const last = previous.get(client);
      if (last === undefined) previous.set(client, { brokerId, brokerCounter });
      else if (last.brokerId !== brokerId || last.brokerCounter !== brokerCounter) {
        last.brokerId = brokerId;
        last.brokerCounter = brokerCounter;
      } else if (!copiesDifferInQos(client, packet)) return null;
    }
    return forward(client, packet);
  };
}

/** Whether the client's filters that match the packet's topic would deliver it at more than one QoS (min of the packet's and the filter's). */
function copiesDifferInQos(client: Client, packet: AedesPublishPacket): boolean {
  const subscriptions = (client as Client & { subscriptions: Record<string, { qos: number }> }).subscriptions;
  let seen: number | undefined;
  for (const filter in subscriptions) {
    if (!topicMatchesFilter(filter, packet.topic)) continue;
    const qos = Math.min(packet.qos, (subscriptions[filter] as { qos: number }).qos);
    if (seen !== undefined && qos !== seen) return true;
    seen = qos;
  }
  return false;
}
