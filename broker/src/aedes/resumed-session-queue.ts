/**
 * Adaptation 15 (aedes/index.ts; persistence and client step 5). What Aedes does: when a
 * persistent session resumes, it resends the session's stored queue from a copy of it taken
 * at CONNACK (lib/handlers/connect.js emptyQueue) while live deliveries of the same messages
 * reach the new connection; a message the client acknowledged from one copy is gone from the
 * queue when the other reaches aedes-persistence's outgoingUpdate, which fails with "no such
 * packet", and Aedes treats that as a client error and closes the new connection. And when
 * authorizeForward refuses a live delivery to a persistent session, Aedes drops "its" queued
 * copy by packet identifier, which a live packet does not have yet: the in-memory queue then
 * drops the oldest message not yet sent, someone else's. Why we change it: every certificate
 * swap under traffic cut the new connection right after CONNACK, and the message written to
 * it was lost. Upstream: none found. Record: docs/internals/resumed-session-queue.md.
 */
import type { ClientStep } from './client-steps.js';

/** The queue entry was settled (acknowledged or dropped) before this delivery got to it. */
export class AlreadySettled extends Error {
  constructor() {
    super('the queued message was settled before this delivery reached it');
    this.name = 'AlreadySettled';
  }
}

interface QueuedPacket {
  cmd?: string;
  messageId?: number | null;
}

/** The slice of an Aedes persistence (in-memory or Redis) this wraps. */
interface OutgoingQueue {
  outgoingUpdate(client: { id: string }, packet: QueuedPacket): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: QueuedPacket): Promise<unknown>;
}

/**
 * Wraps the persistence Aedes is given (before Aedes is made):
 * - outgoingUpdate of a PUBLISH whose queue entry is gone rejects with AlreadySettled, which
 *   the client step below keeps from becoming a client error: the delivery is skipped, as
 *   the message was acknowledged (or dropped) already. A PUBREL's update is left as it is.
 * - outgoingClearMessageId without a packet identifier (Aedes' deliverQoS giving up a live
 *   delivery that authorizeForward refused) clears nothing, as the Redis persistence already
 *   does: the entry, if any, is asked about again, and cleared, when the session next resumes.
 */
export function settleQueueRaces<T>(persistence: T): T {
  const queue = persistence as unknown as OutgoingQueue;
  const update = queue.outgoingUpdate.bind(queue);
  const clear = queue.outgoingClearMessageId.bind(queue);
  queue.outgoingUpdate = async (client, packet) => {
    try {
      await update(client, packet);
    } catch (err) {
      if ((packet.cmd ?? 'publish') === 'publish' && err instanceof Error && err.message === 'no such packet') throw new AlreadySettled();
      throw err;
    }
  };
  queue.outgoingClearMessageId = (client, packet) => (packet.messageId == null ? Promise.resolve(undefined) : clear(client, packet));
  return persistence;
}

/**
 * The client step: an AlreadySettled that Aedes emits as the client's 'error' (lib/client.js
 * writeQoS, lib/handlers/connect.js emptyQueueFilter) is dropped; both callers then go on
 * without writing the packet. `onSettled` counts them.
 */
export function ignoreSettledDeliveries(onSettled: () => void): ClientStep {
  return (client) => {
    const emit = client.emit.bind(client) as (event: string | symbol, ...args: unknown[]) => boolean;
    (client as { emit: typeof emit }).emit = (event, ...args) => {
      if (event === 'error' && args[0] instanceof AlreadySettled) {
        onSettled();
        return true;
      }
      return emit(event, ...args);
    };
  };
}
