/**
 * Adaptation 9 (aedes/index.ts; client step 5). What Aedes does: every QoS 0 PUBLISH passes
 * its stream, parser, publish series and emitter, with two packet copies and a setImmediate per
 * delivery. Why we change it: at 1,000 msg/s that path cost as much broker CPU again as TLS, and
 * p99 latency followed. Upstream: none (a design limit of a stream-based broker, not a bug).
 * Record: docs/internals/qos0-relay.md.
 */
import type { Duplex } from 'node:stream';
import type { Aedes } from 'aedes';
import type { BrokerContext } from '../server/broker-context.js';
import { guardOf, type ConnectionGuard, type TakesRead } from '../server/connection-guard.js';
import { mayPublish } from '../acl/decide.js';
import { LengthState, readFixedHeader, type FixedHeader } from '../wire/fixed-header.js';
import type { ClientStep } from './client-steps.js';
import { readsFromPacketBoundary } from './mqtt-packet-parser.js';

/** The parts of an Aedes 1.2 client the relay reads: its state flags and its read gate. */
interface RelayClient {
  readonly id: string;
  readonly conn: Duplex;
  readonly connected: boolean;
  readonly connackSent: boolean;
  readonly closed: boolean;
  subscriptions: Record<string, { func: unknown }>;
  /** Packets read and not yet handled: Aedes reads on only at 0. */
  readonly _parsingBatch: number;
  readonly _paused: boolean;
  readonly _parser: unknown;
  readonly _keepaliveInterval: number;
  readonly _keepaliveTimer: NodeJS.Timeout;
  waitForDrain(done: () => void): void;
}

/** The listener Aedes registers on its emitter for one subscription, and whose it is. */
interface Owner {
  readonly client: RelayClient;
  readonly filter: string;
}

/** One PUBLISH of a read, and the clients it goes to. */
interface Relayed {
  readonly frame: Buffer;
  readonly to: RelayClient[];
}

const PUBLISH_QOS0 = 0x30;
const DOLLAR = 0x24;
const PLUS = 0x2b;
const HASH = 0x23;

/** Read into and used at once, for every connection. */
const header: FixedHeader = { headerBytes: 0, remainingLength: 0, minimal: true };

let relayedHere = 0;

/**
 * Takes a read of QoS 0 PUBLISH packets off the connection before Aedes sees it and writes
 * each packet's bytes, as they came, to the live local subscribers of its topic. At a
 * fixed 1,000 messages per second, Aedes' path — the socket's Readable buffer, a tick to
 * 'readable', the parser's packet event, handlePublish, the publish series, the emitter,
 * two Packet copies per delivery and a setImmediate before each write — cost as much broker
 * CPU again as the TLS records themselves, and p99 latency followed (bench:broker).
 *
 * It takes a read only when Aedes would have done exactly the same with it, and otherwise
 * hands the whole read to Aedes untouched:
 * - the publisher is connected (CONNACK sent) on MQTT 3.1 or 3.1.1, Aedes has handled all
 *   it read before (so a message can never overtake an earlier one of the same client),
 *   and the read starts on a packet boundary and holds whole packets only;
 * - every packet is a PUBLISH with flags 0 (QoS 0, no DUP, not retained: a retained one
 *   must be stored) and a minimal Remaining Length, whose topic the certificate's ACL
 *   allows (which also refuses NUL, wildcards, ill-formed UTF-8 and empty topics) within
 *   Aedes' level limit, from a certificate neither revoked nor expired; any refusal is
 *   Aedes' to make, with its logs, metrics and close;
 * - every listener the emitter holds for the topic is a client subscription, and every
 *   subscriber is connected (CONNACK sent: held deliveries stay first) and not behind on
 *   its writes: a subscriber that must be waited for is Aedes' to wait for (drainTimeout).
 *
 * Then each subscriber gets one copy however many of its filters match, as
 * deduplicateDeliveries lets through, and a filter starting with a wildcard gets no
 * `$` topic ([MQTT-4.7.2-1]). The bytes go unchanged: at QoS 0, with RETAIN and DUP clear,
 * they are what Aedes would have encoded. Aedes' 'publish' event is not emitted for these
 * messages; the broker counts them in and out itself. Only for an in-process emitter:
 * in a cluster, messages must cross Redis. Returns the step for each client (after every
 * other: it notes subscription owners on the records the others made) and the function
 * the connection guard offers each read to.
 */
export function makeQos0Relay(aedes: Aedes, ctx: BrokerContext): { onClient: ClientStep; takesRead: TakesRead } {
  const owners = new WeakMap<object, Owner>();
  const clientOf = new WeakMap<ConnectionGuard, RelayClient>();
  const onClient: ClientStep = (client, conn) => {
    const guard = guardOf(conn);
    if (guard) clientOf.set(guard, client as unknown as RelayClient);
    noteSubscriptionOwners(client as unknown as RelayClient, owners);
  };
  const matcher = (aedes as unknown as { mq: { _matcher: { match(topic: string): unknown[] } } }).mq._matcher;
  const maxTopicLevels = (aedes as unknown as { maxTopicLevels: number }).maxTopicLevels;
  const tally = ctx.metrics.messageTally;

  /** The PUBLISH packets of `chunk` and their subscribers; undefined when any of it is Aedes' to handle. */
  const plan = (guard: ConnectionGuard, chunk: Buffer): Relayed[] | undefined => {
    const relayed: Relayed[] = [];
    for (let at = 0; at < chunk.length; ) {
      if (chunk[at] !== PUBLISH_QOS0) return undefined;
      if (readFixedHeader(chunk, at, header) !== LengthState.Done || !header.minimal) return undefined;
      const body = at + header.headerBytes;
      if (body + 2 > chunk.length) return undefined;
      const end = body + header.remainingLength;
      const topicEnd = body + 2 + chunk.readUInt16BE(body);
      if (end > chunk.length || topicEnd > end) return undefined;
      const topic = chunk.toString('utf8', body + 2, topicEnd);
      if (!mayPublish(ctx, guard, topic) || levels(topic) > maxTopicLevels) return undefined;
      const to = subscribersOf(topic);
      if (to === undefined) return undefined;
      relayed.push({ frame: chunk.subarray(at, end), to });
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
      const out = guardOf(conn)?.out;
      if (out === undefined || out.owesDrain || conn.writableNeedDrain || conn.destroyed || conn.writableEnded) return undefined;
      if (!to.includes(client)) to.push(client);
    }
    return to;
  };

  const takesRead: TakesRead = (guard, chunk) => {
    const client = clientOf.get(guard);
    if (client === undefined || !client.connackSent || !client.connected || client.closed || client._paused || client._parsingBatch !== 0) return false;
    if (client.conn.readableLength !== 0 || !readsFromPacketBoundary(client._parser) || aedes.closed) return false;
    const relayed = plan(guard, chunk);
    if (relayed === undefined || relayed.length === 0) return false;
    for (const { frame, to } of relayed) {
      tally.in++;
      relayedHere++;
      for (const subscriber of to) {
        tally.out++;
        // Gathered by the subscriber's guard and written once at the end of this turn.
        if (!subscriber.conn.write(frame)) subscriber.waitForDrain(noop);
      }
    }
    if (client._keepaliveInterval > 0) client._keepaliveTimer.refresh();
    return true;
  };
  return { onClient, takesRead };
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
