import type { Duplex } from 'node:stream';
import type { Aedes, Client } from 'aedes';

/**
 * What an adaptation does to each client Aedes 1.2 makes, right after `aedes.handle` made
 * it and before it reads: Aedes has no hook there, so the broker wraps `handle` (a public
 * method) once, in aedes/index.ts, and runs every step in a stated order.
 */
export type ClientStep = (client: Client, conn: Duplex) => void;

/** Wraps `aedes.handle` once: `steps`, in order, on each client as it is made. */
export function onEachClient(aedes: Aedes, steps: readonly ClientStep[]): void {
  const handle = aedes.handle.bind(aedes);
  aedes.handle = (conn, req) => {
    const client = handle(conn, req);
    for (const step of steps) step(client, conn);
    return client;
  };
}
