/**
 * Adaptation 6 with delivery-dedupe.ts (aedes/index.ts, client step 1). What Aedes does:
 * `deliverQoS` caps a delivery by the subscription whose filter is the topic's very name, so a
 * wildcard's delivery is never capped. Why we change it: [MQTT-3.8.4-6] and [MQTT-3.3.5-1].
 * Upstream: moscajs/aedes#1074 (open), earlier #208. Record: docs/internals/granted-qos.md.
 */
import type { Client } from 'aedes';
import { topicMatchesFilter } from '@tlsfleet/common';
import type { ClientStep } from './client-steps.js';

/**
 * Works around moscajs/aedes#1074 in Aedes 1.2.0: `deliverQoS` (lib/client.js) caps a
 * delivery at `client.subscriptions[packet.topic].qos`, the subscription whose filter is
 * the topic's very name. A wildcard's delivery is never capped: a QoS 2 message reached
 * `devices/d1/#` granted QoS 1 at QoS 2, against [MQTT-3.8.4-6]; and an exact filter's lower
 * grant caps the copy of every other filter, against [MQTT-3.3.5-1]. Shown by
 * test/broker-qos-grant.test.ts (the Eclipse Paho suite's test_overlapping_subscriptions).
 *
 * From each connection on, this keeps what the broker needs to set the QoS itself in
 * authorizeForward (see delivery-dedupe.ts):
 * - highestGrant(client, topic): the highest QoS granted among the client's filters that
 *   match the topic, from the client's own subscription records;
 * - Aedes' lookup of an exact filter's record answers that same highest QoS, so its cap
 *   never lowers a copy below [MQTT-3.3.5-1]'s (addSubs reads the same record to compare a
 *   repeated SUBSCRIBE: at worst it replaces the subscription with an identical one);
 * - deliveringAtQos0(): whether the delivery being authorized goes through `deliver0`,
 *   which sends at QoS 0 whatever it is handed (a QoS 0 subscription's path).
 * A step on each client as Aedes makes it, before any other step replaces its records.
 */
export function trackGrantedQos(): ClientStep {
  return (made) => {
    const client = made as unknown as AedesClient;
    const grants = new Grants();
    clientGrants.set(client, grants);
    client.subscriptions = new Proxy(client.subscriptions, {
      set(records, filter, record: SubscriptionRecord) {
        records[filter as string] = record;
        if (typeof filter === 'string') grants.set(filter, record.qos);
        return true;
      },
      deleteProperty(records, filter) {
        delete records[filter as string];
        if (typeof filter === 'string') grants.delete(filter);
        return true;
      },
      get(records, filter) {
        const record = records[filter as string];
        // A topic name holds no wildcard: a wildcard filter is never what deliverQoS looks up.
        if (record === undefined || typeof filter !== 'string' || record.qos >= grants.highest() || hasWildcard(filter)) return record;
        const highest = grants.highestFor(filter);
        return highest > record.qos ? { ...record, qos: highest } : record;
      },
    });
    const deliver0 = client.deliver0;
    client.deliver0 = (packet, done) => {
      atQos0++;
      try {
        deliver0(packet, done);
      } finally {
        atQos0--;
      }
    };
  };
}

/** The highest QoS granted among the client's filters matching `topic`; -1 when none does. */
export function highestGrant(client: Client, topic: string): number {
  return clientGrants.get(client)?.highestFor(topic) ?? -1;
}

/** The lowest QoS granted among all the client's filters; -1 when it has none. */
export function lowestGrant(client: Client): number {
  return clientGrants.get(client)?.lowest() ?? -1;
}

/** True while Aedes' deliver0 asks authorizeForward: the copy goes out at QoS 0. */
export function deliveringAtQos0(): boolean {
  return atQos0 > 0;
}

/**
 * Whether authorizeForward is asked about a message from the session's stored queue, which
 * Aedes (lib/handlers/connect.js emptyQueue) writes as the very packet it passed, ignoring
 * the answer's fields: its QoS must be set on that packet. Those are Aedes' QoSPacket, the
 * only packets that carry a writeCallback when they reach authorizeForward.
 */
export function isQueuedResend(packet: object): boolean {
  return 'writeCallback' in packet;
}

interface SubscriptionRecord {
  qos: number;
}

interface AedesClient {
  subscriptions: Record<string, SubscriptionRecord>;
  deliver0: (packet: unknown, done: () => void) => void;
}

const clientGrants = new WeakMap<object, Grants>();
let atQos0 = 0;

/** One client's granted QoS by filter. */
class Grants {
  private readonly byFilter = new Map<string, number>();
  private bounds: { lowest: number; highest: number } | undefined;

  set(filter: string, qos: number): void {
    this.byFilter.set(filter, qos);
    this.bounds = undefined;
  }

  delete(filter: string): void {
    this.byFilter.delete(filter);
    this.bounds = undefined;
  }

  highest(): number {
    return this.range().highest;
  }

  lowest(): number {
    return this.range().lowest;
  }

  highestFor(topic: string): number {
    let highest = -1;
    for (const [filter, qos] of this.byFilter) {
      if (qos > highest && topicMatchesFilter(filter, topic)) highest = qos;
    }
    return highest;
  }

  private range(): { lowest: number; highest: number } {
    if (this.bounds) return this.bounds;
    if (this.byFilter.size === 0) return (this.bounds = { lowest: -1, highest: -1 });
    let lowest = 2;
    let highest = -1;
    for (const qos of this.byFilter.values()) {
      lowest = Math.min(lowest, qos);
      highest = Math.max(highest, qos);
    }
    this.bounds = { lowest, highest };
    return this.bounds;
  }
}

function hasWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#');
}
