/**
 * Adaptation 14 (aedes/index.ts). What Aedes does: a PUBLISH its authorizePublish lets
 * through is acknowledged and handed to `aedes.publish`, which stores it when retained and
 * emits it to subscribers (across Redis in a cluster); a hook can only let it through or
 * close the connection. Why we change it: a renew request on `$tlsfleet/certificates/<id>/renew`
 * is a request to the broker itself: it must be acknowledged like any PUBLISH but never
 * stored, emitted or delivered. Upstream: none (Aedes has no "consume" answer in its hooks).
 * Record: docs/internals/inband-renewal.md.
 */
import type { Aedes, AedesOptions, Client, PublishPacket } from 'aedes';
import { CERTIFICATES_TOPIC_PREFIX } from '@tlsfleet/common';

type PublishDone = (err?: Error | null) => void;
type AuthorizePublish = NonNullable<AedesOptions['authorizePublish']>;

interface Publishing {
  publish(packet: PublishPacket, client?: Client | null | PublishDone, done?: PublishDone): void;
}

function isRenewalTopic(topic: unknown): boolean {
  return typeof topic === 'string' && topic.startsWith(CERTIFICATES_TOPIC_PREFIX);
}

/**
 * The broker's authorizePublish, made to clear RETAIN on a renew request it allowed, before
 * the per-client limits (step 7) would book a retained message that is never stored.
 */
export function renewRequestsNotRetained(authorize: AuthorizePublish): AuthorizePublish {
  return (client, packet, done) => {
    authorize(client, packet, (err) => {
      if (!err && client && isRenewalTopic(packet.topic)) packet.retain = false;
      done(err);
    });
  };
}

/**
 * Takes every PUBLISH from a client under `$tlsfleet/certificates/` out of Aedes' publish
 * path, after authorizePublish allowed it (only the session's own `renew` topic passes) and
 * after Aedes acknowledged it (PUBACK for QoS 1, PUBREC for QoS 2): `onRequest` gets it, no
 * subscriber, store or Redis does. The broker's own publishes (no client: the answers on
 * `renewed`, presence events) pass through untouched. The publish relay never takes such a
 * PUBLISH (it leaves every `$` topic to Aedes).
 */
export function consumeRenewRequests(aedes: Aedes, onRequest: (client: Client, packet: PublishPacket) => void): void {
  const state = aedes as unknown as Publishing;
  const publish = state.publish.bind(aedes);
  state.publish = (packet, client, done) => {
    if (client === null || client === undefined || typeof client === 'function' || !isRenewalTopic(packet.topic)) return publish(packet, client, done);
    try {
      onRequest(client, packet);
    } finally {
      done?.(null);
    }
  };
}
