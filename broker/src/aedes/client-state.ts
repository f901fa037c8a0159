import type { Aedes, Client } from 'aedes';

/**
 * Aedes 1.2 state the broker reads but Aedes does not declare: its registry of clients
 * (`aedes.clients`, a client registered after its session is restored, before CONNACK;
 * after a takeover the id maps to the new connection), each client's subscriptions
 * (`client.subscriptions`, a record by filter), whether a client's CONNACK is written
 * (`client.connackSent`), whether it sent DISCONNECT (`client._disconnected`) and Aedes'
 * persistence (`aedes.persistence`).
 * Read only through here, so that a change in Aedes is one file's.
 */
interface AedesState {
  clients: Record<string, Client>;
  persistence: unknown;
}

/** The client registered under `clientId`, if any. */
export function registeredClient(aedes: Aedes, clientId: string): Client | undefined {
  return (aedes as unknown as AedesState).clients[clientId];
}

/** Every registered client, as a snapshot. */
export function registeredClients(aedes: Aedes): Client[] {
  return Object.values((aedes as unknown as AedesState).clients);
}

/** The filters `client` holds a subscription to. */
export function subscriptionFilters(client: Client): string[] {
  return Object.keys((client as unknown as { subscriptions: Record<string, unknown> }).subscriptions);
}

/** Whether `client` ended its session with DISCONNECT (Aedes 1.2's `_disconnected`). */
export function sentDisconnect(client: Client): boolean {
  return (client as unknown as { _disconnected?: boolean })._disconnected === true;
}

/** Whether Aedes has written `client`'s CONNACK: false while it restores a persistent session. */
export function connackSent(client: Client): boolean {
  return (client as unknown as { connackSent: boolean }).connackSent;
}

/** Aedes' persistence, as the slice `T` of its API (aedes-persistence 11, promise forms) the caller uses. */
export function persistenceOf<T>(aedes: Aedes): T {
  return (aedes as unknown as AedesState).persistence as T;
}
