import type { Client, ConnectPacket } from 'aedes';
import { reachesCertificateTopics } from '@tlsfleet/common';
import type { BrokerContext } from '../server/broker-context.js';
import { guardOf, type ConnectionGuard } from '../server/connection-guard.js';
import { issuedByPinnedIssuer } from '../trust/issuer-pinning.js';
import { connectionLog } from '../server/connection-log.js';
import { registeredClient } from '../aedes/client-state.js';

type Step = (ctx: BrokerContext, conn: ConnectionGuard, packet: ConnectPacket) => string | undefined;

/**
 * The connect flow, in order; the first step that names a reason refuses the connection,
 * with CONNACK 5 "not authorized" unless RETURN_CODES says otherwise (MQTT 3.1.1
 * §3.2.2.3). The TLS layer has already verified the chain and the identity layer the
 * certificate profile.
 */
const RETURN_CODES: Readonly<Record<string, number>> = { empty_client_id: 2 };

export const connectSteps: readonly [string, Step][] = [
  // A retired intermediate still chains to the root, which stays in the bundle.
  ['issuer in the current trust bundle', (ctx, conn) => (issuedByPinnedIssuer(conn.peer, ctx.trustedIssuers) ? undefined : 'issuer_not_trusted')],
  ['certificate not revoked', (ctx, conn) => (ctx.isRevoked(conn.peer.serial) ? 'revoked' : undefined)],
  ['certificate not expired', (ctx, conn) => (ctx.now() >= conn.peer.notAfterMs ? 'expired' : undefined)],
  // [MQTT-3.1.3-3] allows any clientId; ours must be the certificate's identity, which
  // also rules out the zero-length clientId Aedes would otherwise accept with clean=0.
  // [MQTT-3.1.3-8]: a zero-byte clientId with CleanSession 0 is answered "identifier rejected".
  ['clientId present for a persistent session', (_ctx, _conn, packet) => (packet.clientId === '' && !packet.clean ? 'empty_client_id' : undefined)],
  ['clientId is the certificate identity', (_ctx, conn, packet) => (packet.clientId === conn.peer.identity.name ? undefined : 'client_id_mismatch')],
  // A will on the renewal topics would be a renew request sent by the broker on the device's behalf.
  ['will topic allowed', (ctx, conn, packet) => (packet.will && (!conn.aclFrom(ctx.acl).canPublish(packet.will.topic) || reachesCertificateTopics(packet.will.topic)) ? 'will_denied' : undefined)],
];

/**
 * preConnect: runs the steps and remembers the refusal on the connection; authenticate
 * then answers it, so the client gets CONNACK 5 rather than a bare close. Username and
 * password are never consulted: there is no path around the certificate.
 */
export function preConnect(ctx: BrokerContext) {
  return (client: Client, packet: ConnectPacket, done: (err: Error | null, ok: boolean) => void): void => {
    const conn = guardOf(client.conn);
    if (!conn) return done(null, false); // deny by default
    for (const [, step] of connectSteps) {
      const reason = step(ctx, conn, packet);
      if (reason) {
        conn.refusal = reason;
        break;
      }
    }
    done(null, true);
  };
}

export function authenticate(ctx: BrokerContext) {
  return (client: Client, _username: unknown, _password: unknown, done: (err: (Error & { returnCode: number }) | null, ok: boolean | null) => void): void => {
    const conn = guardOf(client.conn);
    const reason = conn ? conn.refusal : 'no_identity';
    if (reason) {
      ctx.metrics.authFailures.inc({ reason });
      connectionLog(ctx.logger).refused('connect', reason, { client: client.id, identity: conn?.peer.identity.name, address: conn?.clientAddress });
      return done(Object.assign(new Error(`not authorized: ${reason}`), { returnCode: RETURN_CODES[reason] ?? 5 }), false);
    }
    const previous = ctx.aedes && registeredClient(ctx.aedes, client.id);
    if (previous && previous !== client) {
      // MQTT takeover [MQTT-3.1.4-2]: the new connection wins. Ping-pong between two
      // holders of one identity shows up in this counter and the log.
      ctx.metrics.sessionTakeovers.inc();
      ctx.logger.warn({ client: client.id }, 'session taken over by a new connection with the same identity');
    }
    done(null, true);
  };
}
