/**
 * Adaptation 13 (aedes/index.ts). What Aedes does: a CONNECT with a client id already in
 * use closes the older session (in `registerClient`, or on a `$SYS/<broker>/new/clients`
 * message from another instance of a cluster), and nothing tells that close apart from any
 * other. Why we change it: presence events name why a session ended, and "another
 * connection took its place" is what an operator most needs to tell from a crash.
 * Upstream: none (Aedes emits no reason for a close). Record: docs/internals/presence-events.md.
 */
import type { Aedes, Client } from 'aedes';

interface Registering {
  readonly id: string;
  readonly clients: Record<string, Client>;
  registerClient(client: Client): void;
  /** mqemitter-redis 7 hands each message from Redis to its local listeners through `_emit`. */
  readonly mq: { _emit?: (packet: { topic?: unknown; payload?: unknown }, done?: unknown) => unknown };
}

const NEW_CLIENT = /^\$SYS\/([^/]+)\/new\/clients$/;

/**
 * Calls `onTakeover(older)` for each session about to close because a newer one with its
 * client id was accepted, here or on another instance of a cluster. Another instance's
 * message is seen before any listener gets it: Aedes' own listener closes the older session
 * at once, and a session without subscriptions reaches 'clientDisconnect' within that call.
 */
export function noteTakeovers(aedes: Aedes, onTakeover: (older: Client) => void): void {
  const state = aedes as unknown as Registering;
  const register = state.registerClient.bind(aedes);
  state.registerClient = (client) => {
    const older = state.clients[client.id];
    if (older !== undefined && older !== client) onTakeover(older);
    register(client);
  };
  const fromRedis = state.mq._emit;
  if (typeof fromRedis !== 'function') return;
  state.mq._emit = (packet, done) => {
    const broker = typeof packet?.topic === 'string' ? NEW_CLIENT.exec(packet.topic)?.[1] : undefined;
    if (broker !== undefined && broker !== state.id && packet.payload !== undefined) {
      const older = state.clients[String(packet.payload)];
      if (older !== undefined) onTakeover(older);
    }
    return fromRedis.call(state.mq, packet, done);
  };
}
