import type { Client } from 'aedes';
import { sentDisconnect } from '../aedes/client-state.js';

/** Why a session ended, as presence events name it (docs/reference/mqtt.md). */
export type SessionEndReason = 'client' | 'revoked' | 'expired' | 'takeover' | 'timeout' | 'error' | 'shutdown';

const marked = new WeakMap<Client, SessionEndReason>();

/**
 * Notes why the broker is about to close `client`'s session. The first reason wins: a
 * session revoked while the broker shuts down ended because it was revoked.
 */
export function markSessionEnd(client: Client, reason: SessionEndReason): void {
  if (!marked.has(client)) marked.set(client, reason);
}

/**
 * Why `client`'s session ended: the reason the broker marked, else `client` when it sent
 * DISCONNECT, else `error` (the connection failed or was closed without DISCONNECT).
 */
export function sessionEndReason(client: Client): SessionEndReason {
  return marked.get(client) ?? (sentDisconnect(client) ? 'client' : 'error');
}
