/**
 * Every change the broker makes to Aedes 1.2 and mqtt-packet 9 from outside, in the order
 * it makes them. Only the files of this folder touch their internals (private fields,
 * `aedes/lib` behaviour, the mqtt-packet copy Aedes loads); aedes/boundary.test.ts fails when
 * any other broker file does. Each adaptation is one file here whose opening comment says
 * what Aedes does, why the broker changes it and the upstream issue, and one decision
 * record in docs/internals/ with the measurement or test behind it.
 *
 * Moving to another Aedes (2.x for MQTT 5): dependency-versions.ts refuses to start on any
 * release but the one these were written for; go down this list, check each against the
 * new release, drop the ones it fixes.
 */
import { Aedes, type AedesOptions, type Client, type PublishPacket } from 'aedes';
import type { Histogram } from 'prom-client';
import type { ClientLimits } from '../limits/client-limits.js';
import type { BrokerContext } from '../server/broker-context.js';
import { markSessionEnd } from '../presence/session-end.js';
import { boundedPersistence } from './bounded-persistence.js';
import { registeredClient } from './client-state.js';
import { onEachClient } from './client-steps.js';
import { ConnackFirst } from './connack-first.js';
import { timeConnects } from './connect-latency.js';
import { deduplicateDeliveries } from './delivery-dedupe.js';
import { assertDependencyVersions } from './dependency-versions.js';
import { trackGrantedQos } from './granted-qos.js';
import { installClientLimits, type LimitState } from './install-client-limits.js';
import { installPublishReader } from './mqtt-packet-parser.js';
import { installPublishWriter } from './mqtt-packet-writer.js';
import type { TakesRead } from '../server/connection-guard.js';
import { mirrorPersistedSubscriptions } from './persisted-subscriptions.js';
import { makePublishRelay } from './publish-relay.js';
import { gateReads } from './read-gate.js';
import { noteTakeovers } from './session-takeover.js';
import { ignoreSettledDeliveries, settleQueueRaces } from './resumed-session-queue.js';
import { boundSubscriberBacklog } from './subscriber-backlog.js';
import { consumeRenewRequests, renewRequestsNotRetained } from './renew-requests.js';

export type { LimitState } from './install-client-limits.js';

/** The broker's own hooks, as Aedes' options take them. */
export type BrokerHooks = Required<Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'authorizeForward'>>;

export interface AedesSetup {
  readonly ctx: BrokerContext;
  readonly hooks: BrokerHooks;
  readonly connectTimeoutMs: number;
  readonly limits: Readonly<ClientLimits>;
  /** QoS 1 messages kept for one offline persistent session. */
  readonly maxQueuedMessages: number;
  onQueueDrop(clientId: string): void;
  /** A cluster's shared emitter and session store; the publish relay is then off. */
  readonly cluster?: { readonly mq: unknown; readonly persistence: unknown; queueLength(clientId: string): Promise<number> };
  /** Runs Aedes' creation (a cluster bounds its wait for Redis); default: runs it. */
  readonly start?: (create: () => Promise<Aedes>) => Promise<Aedes>;
  /** The publish relay (publish-relay.ts); never in a cluster. */
  readonly publishRelay: boolean;
  readonly connectSeconds: Histogram;
  /** A renew request a client published on its own `$tlsfleet/certificates/<id>/renew` (renew-requests.ts). */
  onRenewRequest(client: Client, packet: PublishPacket): void;
}

export interface AdaptedAedes {
  readonly aedes: Aedes;
  /** The publish relay's taker of reads, for the connection guards; undefined when it is off. */
  readonly takesRead: TakesRead | undefined;
  /** What the per-client limits hold, for the metrics. */
  readonly limitState: LimitState;
}

/**
 * Adaptations 1–3, before anything of the broker opens (startBroker's first call): a
 * release mismatch must stop the start before a listener or a Redis connection exists.
 */
export function prepareAedes(): void {
  // 1. The exact Aedes and mqtt-packet releases everything below was written for
  //    (dependency-versions.ts, docs/internals/aedes-version-pin.md).
  assertDependencyVersions();
  // 2. mqtt-packet's writeToStream: one buffer per PUBLISH and acknowledgement
  //    (mqtt-packet-writer.ts, mqttjs/mqtt-packet#48). Process-wide, idempotent.
  installPublishWriter();
  // 3. mqtt-packet's parser: PUBLISH and acknowledgements read by the broker
  //    (mqtt-packet-parser.ts). Process-wide, idempotent.
  installPublishReader();
}

/** Adaptations 4–15: Aedes, made and adapted, in this order. Needs prepareAedes first. */
export async function createAdaptedAedes(setup: AedesSetup): Promise<AdaptedAedes> {
  const { ctx, hooks, limits, cluster } = setup;
  const connackFirst = new ConnackFirst();
  let aedes: Aedes | undefined;
  // 4. Aedes' persistence: each offline session's queue bounded (bounded-persistence.ts,
  //    moscajs/aedes#1087); in one process, its persisted subscriptions mirrored for the
  //    relay of step 9 (persisted-subscriptions.ts).
  //    Step 15 wraps it too: in a resumed session's queue, a copy settled meanwhile is skipped,
  //    not a client error, and a refused live delivery clears no other message
  //    (resumed-session-queue.ts).
  const persistence = settleQueueRaces(boundedPersistence(setup.maxQueuedMessages, (clientId) => aedes !== undefined && registeredClient(aedes, clientId) !== undefined, setup.onQueueDrop, cluster?.persistence, cluster?.queueLength));
  const persisted = cluster || !setup.publishRelay ? undefined : mirrorPersistedSubscriptions(persistence);
  const create = () => Aedes.createBroker({
    persistence,
    ...(cluster ? { mq: cluster.mq } : {}),
    connectTimeout: setup.connectTimeoutMs,
    // A subscriber that stops reading is cut after 10 s instead of stalling delivery to all.
    drainTimeout: 10_000,
    // Client ids are device ids (≤ 64 characters), checked against the certificate.
    maxClientsIdLength: 64,
    // 5. CONNACK before any message of a resumed session: deliveries held from preConnect
    //    (connack-first.ts, moscajs/aedes#80); released at step 11.
    preConnect: (client, packet, done) => {
      connackFirst.hold(client);
      hooks.preConnect(client, packet, done);
    },
    authenticate: hooks.authenticate,
    // 14a. A renew request is never retained (renew-requests.ts).
    authorizePublish: renewRequestsNotRetained(hooks.authorizePublish),
    authorizeSubscribe: hooks.authorizeSubscribe,
    authorizeForward: hooks.authorizeForward,
  });
  aedes = await (setup.start ? setup.start(create) : create());

  // 6. authorizeForward: one delivery per message per client, at the granted QoS
  //    (delivery-dedupe.ts, moscajs/aedes#994, #955; granted-qos.ts, moscajs/aedes#1074).
  const oneCopyEach = deduplicateDeliveries(aedes);
  // 7. authorizeSubscribe, authorizePublish and the persistence's stores: per-identity limits
  //    (install-client-limits.ts, Aedes' own window from moscajs/aedes#1154).
  const limitState = installClientLimits(aedes, ctx, limits);
  // 8. Deliveries to a device that stops reading (subscriber-backlog.ts, moscajs/aedes#1060).
  const backlog = boundSubscriberBacklog(aedes, ctx, limits.maxSubscriberBacklogBytes);
  // 9. QoS 0 and QoS 1 messages relayed beside Aedes (publish-relay.ts); in a cluster every
  //    message must cross Redis, which only Aedes' emitter does.
  const relay = persisted === undefined ? undefined : makePublishRelay(aedes, ctx, persisted);
  // 10. aedes.handle, wrapped once: each client as Aedes makes it, before its first read,
  //     in this order: its subscription records track granted QoS (granted-qos.ts), its
  //     `duplicates` are switched off (delivery-dedupe.ts), its read loop is gated
  //     (read-gate.ts, moscajs/aedes#154), a device's deliveries are bounded
  //     (subscriber-backlog.ts), a queued copy settled meanwhile is no client error
  //     (resumed-session-queue.ts, step 15), and the relay notes who owns each subscription
  //     (last: it wraps the records the first step made).
  onEachClient(aedes, [trackGrantedQos(), oneCopyEach, gateReads(), backlog, ignoreSettledDeliveries(() => ctx.metrics.settledRedeliveries.inc()), ...(relay ? [relay.onClient] : [])]);
  // 11. The held deliveries of step 5 go out right after CONNACK.
  aedes.on('connackSent', connackFirst.release);
  // 12. preConnect, wrapped: CONNECT-to-CONNACK time (connect-latency.ts; metrics only).
  timeConnects(aedes, setup.connectSeconds);
  // 13. registerClient, wrapped, and the cluster's new-client messages: a session closed
  //     for a newer one with its id is marked `takeover` (session-takeover.ts).
  noteTakeovers(aedes, (older) => markSessionEnd(older, 'takeover'));
  // 14. aedes.publish, wrapped: a client's PUBLISH under $tlsfleet/certificates/ is a renew
  //     request to the broker, acknowledged and never delivered (renew-requests.ts).
  consumeRenewRequests(aedes, setup.onRenewRequest);
  // 15. Made with steps 4 and 10 above: the persistence's outgoingUpdate and
  //     outgoingClearMessageId, and each client's 'error' (resumed-session-queue.ts).
  return { aedes, takesRead: relay?.takesRead, limitState };
}
