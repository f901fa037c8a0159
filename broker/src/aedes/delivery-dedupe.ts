/**
 * Adaptation 6 (aedes/index.ts; client step 2). What Aedes does: its per-client high-water mark
 * on publish numbers drops any message emitted out of numbering order, and it sends one copy per
 * matching filter at whatever QoS. Why we change it: live subscribers lost messages (a retained
 * or QoS 1 publish waiting on its store), and the copies break [MQTT-3.3.5-1]. Upstream:
 * moscajs/aedes#994, moscajs/aedes#955. Record: docs/internals/delivery-dedupe.md.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes';
import type { ClientStep } from './client-steps.js';
import { deliveringAtQos0, highestGrant, isQueuedResend, lowestGrant } from './granted-qos.js';

/**
 * What Aedes' client.duplicates becomes: every read is 0 and every write is dropped, so
 * Aedes' own de-duplication lets every delivery through to authorizeForward.
 */
const NOTHING_SEEN: Record<string, number> = new Proxy(Object.create(null) as Record<string, number>, {
  get: () => 0,
  set: () => true,
});

type QoS = AedesPublishPacket['qos'];

/**
 * One copy of each message per client, at the QoS the client was granted for it: the
 * published QoS capped by the highest QoS granted among the client's filters that match
 * the topic. [MQTT-3.3.5-1] asks for that maximum; §3.3.5 allows, but does not require,
 * a further copy per filter, which the Paho suite's test_overlapping_subscriptions accepts
 * only at each filter's own QoS. Aedes 1.2 sets neither right (moscajs/aedes#1074,
 * aedes/granted-qos.ts), so the QoS is set here, on every path that reaches
 * authorizeForward: live deliveries, retained messages sent for a SUBSCRIBE, and a
 * persistent session's stored queue.
 *
 * Aedes calls authorizeForward once per matching filter, the copies of one message to one
 * client one after the other in one emit, each through that filter's path: a QoS 0 filter's
 * (deliver0) sends at QoS 0 whatever it is handed, so it carries the message only when
 * QoS 0 is the answer, and a QoS 1/2 filter's copy, which follows in the same emit,
 * carries it otherwise. A message is recognised by the number Aedes gives each publish
 * (brokerId, brokerCounter); Aedes' own high-water mark on that number is switched off
 * because publishes are not emitted in the order they are numbered: a retained one waits
 * for its store, a QoS 1 one for the offline queues of persistent subscribers, a Redis
 * round trip each in a cluster, and the mark dropped it for every live subscriber that
 * another publish had reached meanwhile. Retained messages sent for a SUBSCRIBE carry no
 * brokerId and are not de-duplicated, as in Aedes. Needs trackGrantedQos's step on every
 * client. Call once, right after the broker is made, before anything else wraps
 * `aedes.authorizeForward`; returns the step for each client (from the connection on: a
 * persistent session's subscriptions are restored before 'client').
 */
export function deduplicateDeliveries(aedes: Aedes): ClientStep {
  const previous = new WeakMap<Client, { brokerId: string; brokerCounter: number; sent: boolean }>();
  const forward = aedes.authorizeForward.bind(aedes);
  aedes.authorizeForward = (client: Client, packet: AedesPublishPacket) => {
    const { brokerId, brokerCounter } = packet;
    // A resumed session's queued copy is not one of an emit's per-filter copies: refusing it
    // would clear it from the queue (emptyQueueFilter) while the live copy may still be lost
    // with the connection. It goes out; a second copy is what QoS 1 allows.
    const oneOfAnEmit = brokerId && !isQueuedResend(packet);
    let last = oneOfAnEmit ? previous.get(client) : undefined;
    if (oneOfAnEmit) {
      if (last === undefined) previous.set(client, (last = { brokerId, brokerCounter, sent: false }));
      else if (last.brokerId !== brokerId || last.brokerCounter !== brokerCounter) {
        last.brokerId = brokerId;
        last.brokerCounter = brokerCounter;
        last.sent = false;
      } else if (last.sent) return null;
    }
    const qos = deliveryQos(client, packet);
    // No filter of the client matches any more (one removed since this was queued).
    if (qos < 0) return null;
    if (qos > 0 && deliveringAtQos0()) return null;
    // A stored message would stay in the queue, unacknowledged, sent again at each reconnect.
    if (qos === 0 && isQueuedResend(packet)) return null;
    const out = forward(client, packet);
    if (!out) return null;
    out.qos = qos as QoS;
    if (last) last.sent = true;
    return out;
  };
  return (client) => {
    (client as Client & { duplicates: Record<string, number> }).duplicates = NOTHING_SEEN;
  };
}

/** The QoS to send `packet` at to `client`; -1 when none of its filters matches. */
function deliveryQos(client: Client, packet: AedesPublishPacket): QoS | -1 {
  if (packet.qos === 0) return 0;
  // Every filter is granted at least the published QoS: no need to find which match.
  if (packet.qos <= lowestGrant(client)) return packet.qos;
  return Math.min(packet.qos, highestGrant(client, packet.topic)) as QoS | -1;
}
