/**
 * Adaptation 9 (aedes/index.ts; client step 6). What Aedes does: every PUBLISH passes its
 * stream, parser, publish series and emitter, with packet copies, a PUBACK write before the
 * delivery and a setImmediate per delivery. Why we change it: at 1,000 msg/s that path cost
 * as much broker CPU again as TLS, and latency followed. Upstream: none (a design limit of a
 * stream-based broker, not a bug). Record: docs/internals/publish-relay.md.
 */
import type { Duplex } from 'node:stream';
import type { Aedes, Client } from 'aedes';
import type { BrokerContext } from '../server/broker-context.js';
import { guardOf, type ConnectionGuard, type TakesRead } from '../server/connection-guard.js';
import { mayPublish, mayReceive } from '../acl/decide.js';
import { LengthState, readFixedHeader, type FixedHeader } from '../wire/fixed-header.js';
import { encodePublish } from '../wire/publish-writer.js';
import type { ClientStep } from './client-steps.js';
import { highestGrant } from './granted-qos.js';
import { readsFromPacketBoundary } from './mqtt-packet-parser.js';
import type { PersistedSubscription, PersistedSubscriptions } from './persisted-subscriptions.js';

/** The parts of an Aedes 1.2 client the relay reads: its state flags and its read gate. */
interface RelayClient {
  readonly id: string;
  readonly conn: Duplex;
  readonly clean: boolean;
  readonly connected: boolean;
  readonly connackSent: boolean;
  readonly closed: boolean;
  subscriptions: Record<string, { func: unknown }>;
  /** The next packet identifier Aedes gives a QoS 1/2 delivery to this client. */
  _nextId: number;
  /** Packets read and not yet handled: Aedes reads on only at 0. */
  readonly _parsingBatch: number;
  readonly _paused: boolean;
  readonly _parser: unknown;
  readonly _keepaliveInterval: number;
  readonly _keepaliveTimer: NodeJS.Timeout;
  waitForDrain(done: () => void): void;
}

/** Aedes' own state a relayed QoS 1 message takes part in, as its publish series would. */
interface AedesQueues {
  readonly id: string;
  counter: number;
  readonly closed: boolean;
  readonly maxTopicLevels: number;
  readonly mq: { _matcher: { match(topic: string): unknown[] } };
  readonly persistence: {
    outgoingEnqueueCombi(subs: PersistedSubscription[], packet: object): Promise<void>;
    outgoingUpdate(client: RelayClient, packet: object): Promise<void>;
  };
}

/** The listener Aedes registers on its emitter for one subscription, and whose it is. */
interface Owner {
  readonly client: RelayClient;
  readonly filter: string;
}

/** One PUBLISH of a read, and the clients it goes to. */
interface Relayed {
  /** The packet's bytes as read. */
  readonly frame: Buffer;
  readonly qos: 0 | 1;
  readonly topic: string;
  /** The publisher's packet identifier (QoS 1). */
  readonly messageId: number;
  readonly payload: Buffer;
  readonly to: RelayClient[];
  /** For QoS 1, per subscriber in `to`: whether it gets the message at QoS 1 (its highest grant). */
  readonly atQos1: readonly boolean[];
  /** The persistent sessions whose queue holds the message until acknowledged (QoS 1). */
  readonly queuedFor: PersistedSubscription[];
}

const PUBLISH_QOS0 = 0x30;
const PUBLISH_QOS1 = 0x32;
const DOLLAR = 0x24;
const PLUS = 0x2b;
const HASH = 0x23;
const NONE: PersistedSubscription[] = [];
const NO_GRANTS: readonly boolean[] = [];

/** Read into and used at once, for every connection. */
const header: FixedHeader = { headerBytes: 0, remainingLength: 0, minimal: true };

let relayedHere = 0;

/**
 * Takes a read of QoS 0 and QoS 1 PUBLISH packets off the connection before Aedes sees it and
 * delivers each message to the live local subscribers of its topic in the same turn, doing
 * what Aedes' path would have done, and no more. At a fixed 1,000 messages per second,
 * Aedes' path — the socket's Readable buffer, a tick to 'readable', the parser's packet
 * event, handlePublish, the publish series, the emitter, Packet copies and a setImmediate
 * per delivery — cost as much broker CPU again as the TLS records, and latency followed.
 *
 * It takes a read only when Aedes would have done exactly the same with it, and otherwise
 * hands the whole read to Aedes untouched:
 * - the publisher is connected (CONNACK sent) on MQTT 3.1 or 3.1.1, Aedes has handled all
 *   it read before (so a message can never overtake an earlier one of the same client),
 *   and the read starts on a packet boundary and holds whole packets only;
 * - every packet is a PUBLISH at QoS 0 or 1 with DUP and RETAIN clear (a retained one must
 *   be stored, a DUP one may be a retransmission) and a minimal Remaining Length, a QoS 1
 *   one with a non-zero packet identifier, any with a topic not starting with `$` (the
 *   broker's own topics, such as a renew request, are Aedes' path), whose topic
 *   the certificate's ACL allows (which also refuses NUL, wildcards, ill-formed UTF-8 and
 *   empty topics) within Aedes' level limit, from a certificate neither revoked nor
 *   expired; any refusal is Aedes' to make, with its logs, metrics and close;
 * - every listener the emitter holds for the topic is a client subscription, every
 *   subscriber is connected (CONNACK sent: held deliveries stay first), may receive the
 *   topic now (mayReceive, as authorizeForward asks) and is not behind on its writes: a
 *   subscriber that must be waited for, or refused, is Aedes' to handle;
 * - for QoS 1, every connected persistent subscriber that gets it at QoS 1 has a persisted
 *   subscription matching it, so the copy queued for it below is the one its PUBACK clears.
 *
 * Then each subscriber gets one copy however many of its filters match, as
 * deduplicateDeliveries lets through, at the highest QoS its matching filters were granted
 * (granted-qos.ts), and a filter starting with a wildcard gets no `$` topic ([MQTT-4.7.2-1]).
 * A QoS 0 message goes out as its bytes came. A QoS 1 message is first queued for every
 * persistent session whose persisted subscriptions match it, online or not, as Aedes'
 * publish series queues it (bounded, bounded-persistence.ts); each copy at QoS 1 takes the
 * subscriber's next packet identifier and, for a persistent session, is marked in its queue
 * with that identifier, as Aedes' deliverQoS does; only then is the publisher's PUBACK
 * written: the broker has taken ownership ([MQTT-4.3.2-2]). The in-memory persistence
 * changes its queues within those calls, so the writes that follow in this turn never
 * precede them. Aedes' 'publish' event is not emitted for these messages; the broker
 * counts them in and out, and samples their delivery latency, itself. Only for an in-process emitter and persistence: in a
 * cluster, messages must cross Redis. Returns the step for each client (after every other:
 * it notes subscription owners on the records the others made) and the function the
 * connection guard offers each read to.
 */
export function makePublishRelay(aedes: Aedes, ctx: BrokerContext, persisted: PersistedSubscriptions): { onClient: ClientStep; takesRead: TakesRead } {
  const owners = new WeakMap<object, Owner>();
  const clientOf = new WeakMap<ConnectionGuard, RelayClient>();
  const onClient: ClientStep = (client, conn) => {
    const guard = guardOf(conn);
    if (guard) clientOf.set(guard, client as unknown as RelayClient);
    noteSubscriptionOwners(client as unknown as RelayClient, owners);
  };
  const state = aedes as unknown as AedesQueues;
  const matcher = state.mq._matcher;
  const tally = ctx.metrics.messageTally;
  const delivery = ctx.metrics.delivery;

  /** The PUBLISH packets of `chunk` and their subscribers; undefined when any of it is Aedes' to handle. */
  const plan = (guard: ConnectionGuard, chunk: Buffer): Relayed[] | undefined => {
    const relayed: Relayed[] = [];
    for (let at = 0; at < chunk.length; ) {
      const first = chunk[at];
      if (first !== PUBLISH_QOS0 && first !== PUBLISH_QOS1) return undefined;
      const qos = first === PUBLISH_QOS0 ? 0 : 1;
      if (readFixedHeader(chunk, at, header) !== LengthState.Done || !header.minimal) return undefined;
      const body = at + header.headerBytes;
      if (body + 2 > chunk.length) return undefined;
      const end = body + header.remainingLength;
      const topicEnd = body + 2 + chunk.readUInt16BE(body);
      const payloadAt = topicEnd + 2 * qos;
      if (end > chunk.length || payloadAt > end) return undefined;
      const messageId = qos === 1 ? chunk.readUInt16BE(topicEnd) : 0;
      // `$` topics are the broker's own: a renew request must reach renew-requests.ts.
      if ((qos === 1 && messageId === 0) || chunk[body + 2] === DOLLAR) return undefined;
      const topic = chunk.toString('utf8', body + 2, topicEnd);
      if (!mayPublish(ctx, guard, topic) || levels(topic) > state.maxTopicLevels) return undefined;
      const to = subscribersOf(topic);
      if (to === undefined) return undefined;
      const queuedFor = qos === 1 ? persisted.match(topic) : NONE;
      const atQos1 = qos === 1 ? to.map((client) => highestGrant(client as unknown as Client, topic) >= 1) : NO_GRANTS;
      if (qos === 1 && !queuesAgree(to, atQos1, queuedFor)) return undefined;
      relayed.push({ frame: chunk.subarray(at, end), qos, topic, messageId, payload: chunk.subarray(payloadAt, end), to, atQos1, queuedFor });
      at = end;
    }
    return relayed;
  };

  const subscribersOf = (topic: string): RelayClient[] | undefined => {
    const listeners = matcher.match(topic);
    const to: RelayClient[] = [];
    for (let i = 0; i < listeners.length; i++) {
      const owner = owners.get(listeners[i] as object);
      if (owner === undefined) return undefined;
      const client = owner.client;
      if (client.subscriptions[owner.filter]?.func !== listeners[i]) return undefined;
      if (topic.charCodeAt(0) === DOLLAR && startsWithWildcard(owner.filter)) continue;
      if (!client.connackSent || !client.connected || client.closed) return undefined;
      const conn = client.conn;
      const guard = guardOf(conn);
      if (guard === undefined || guard.out.owesDrain || conn.writableNeedDrain || conn.destroyed || conn.writableEnded) return undefined;
      if (!mayReceive(ctx, guard, topic)) return undefined;
      if (!to.includes(client)) to.push(client);
    }
    return to;
  };

  const takesRead: TakesRead = (guard, chunk) => {
    const client = clientOf.get(guard);
    if (client === undefined || !client.connackSent || !client.connected || client.closed || client._paused || client._parsingBatch !== 0) return false;
    if (client.conn.readableLength !== 0 || !readsFromPacketBoundary(client._parser) || state.closed) return false;
    const relayed = plan(guard, chunk);
    if (relayed === undefined || relayed.length === 0) return false;
    for (const message of relayed) {
      tally.in++;
      relayedHere++;
      delivery.received(message.payload);
      if (message.qos === 0) deliverQos0(message);
      else {
        deliverQos1(message);
        // Gathered by the publisher's guard, after the copies above.
        client.conn.write(puback(message.messageId));
      }
    }
    if (client._keepaliveInterval > 0) client._keepaliveTimer.refresh();
    return true;
  };

  const deliverQos0 = ({ frame, payload, to }: Relayed): void => {
    for (const subscriber of to) send(subscriber, frame, payload);
  };

  const deliverQos1 = ({ topic, payload, to, atQos1, queuedFor }: Relayed): void => {
    // As Aedes' publish series: one broker-wide identity for the message, the copies queued.
    const packet = { cmd: 'publish', brokerId: state.id, brokerCounter: ++state.counter, topic, payload, qos: 1, retain: false, dup: false, messageId: undefined };
    if (queuedFor.length > 0) state.persistence.outgoingEnqueueCombi(queuedFor, packet).catch(reportQueueError);
    let atQos0: Buffer | undefined;
    for (let i = 0; i < to.length; i++) {
      const subscriber = to[i] as RelayClient;
      if (!atQos1[i]) {
        send(subscriber, (atQos0 ??= encodePublish({ cmd: 'publish', topic, payload, qos: 0 }) as Buffer), payload);
        continue;
      }
      const messageId = subscriber._nextId;
      subscriber._nextId = messageId >= 0xffff ? 1 : messageId + 1;
      if (!subscriber.clean) state.persistence.outgoingUpdate(subscriber, { ...packet, messageId }).catch(reportQueueError);
      send(subscriber, encodePublish({ cmd: 'publish', topic, payload, qos: 1, messageId }) as Buffer, payload);
    }
  };

  const reportQueueError = (err: unknown) => ctx.logger.error({ err }, 'relayed QoS 1 message not queued');

  const send = (subscriber: RelayClient, bytes: Buffer, payload: Buffer): void => {
    tally.out++;
    delivery.delivered(payload);
    // Gathered by the subscriber's guard and written once at the end of this turn.
    if (!subscriber.conn.write(bytes)) subscriber.waitForDrain(noop);
  };
  return { onClient, takesRead };
}

/**
 * Whether every persistent subscriber that gets the message at QoS 1 has a persisted
 * subscription matching it: its copy is then in its queue, to be marked and cleared.
 */
function queuesAgree(to: readonly RelayClient[], atQos1: readonly boolean[], queuedFor: readonly PersistedSubscription[]): boolean {
  for (let i = 0; i < to.length; i++) {
    const client = to[i] as RelayClient;
    if (client.clean || !atQos1[i]) continue;
    if (!queuedFor.some((sub) => sub.clientId === client.id)) return false;
  }
  return true;
}

function puback(messageId: number): Buffer {
  return Buffer.of(0x40, 0x02, messageId >> 8, messageId & 0xff);
}

/**
 * Whose each listener on Aedes' emitter is: Aedes keeps a client's subscriptions in
 * `client.subscriptions[filter] = { qos, func, ... }` and registers that `func`; a proxy
 * on that record, set as the client is made, notes the owner as Aedes writes it.
 */
function noteSubscriptionOwners(client: RelayClient, owners: WeakMap<object, Owner>): void {
  client.subscriptions = new Proxy(client.subscriptions, {
    set(record, filter, subscription: { func?: unknown } | undefined) {
      record[filter as string] = subscription as { func: unknown };
      if (typeof filter === 'string' && typeof subscription?.func === 'function') owners.set(subscription.func, { client, filter });
      return true;
    },
  });
}

function levels(topic: string): number {
  let n = 1;
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 0x2f) n++;
  return n;
}

function startsWithWildcard(filter: string): boolean {
  const c = filter.charCodeAt(0);
  return c === PLUS || c === HASH;
}

function noop(): void {}

/** PUBLISH packets relayed here in this process, for tests that the relay took them. */
export function publishesRelayed(): number {
  return relayedHere;
}
