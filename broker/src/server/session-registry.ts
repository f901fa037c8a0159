import type { Client } from 'aedes';
import { guardOf } from './connection-guard.js';

/** setTimeout's ceiling: about 24.8 days; longer certificates re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Live sessions by certificate serial, so a revocation closes the session it names and
 * each session closes when its certificate's notAfter passes.
 */
export class SessionRegistry {
  private readonly bySerial = new Map<string, Client>();
  private readonly timers = new Map<Client, NodeJS.Timeout>();
  private readonly now: () => number;
  private readonly onExpired: (client: Client) => void;

  constructor(now: () => number, onExpired: (client: Client) => void) {
    this.now = now;
    this.onExpired = onExpired;
  }

  add(client: Client): void {
    const guard = guardOf(client.conn);
    if (!guard) return;
    this.bySerial.set(guard.peer.serial, client);
    this.arm(client, guard.peer.notAfterMs);
  }

  remove(client: Client): void {
    const guard = guardOf(client.conn);
    if (guard && this.bySerial.get(guard.peer.serial) === client) this.bySerial.delete(guard.peer.serial);
    clearTimeout(this.timers.get(client));
    this.timers.delete(client);
  }

  /** The session authenticated with this serial, if one is live. */
  bySerialNumber(serial: string): Client | undefined {
    return this.bySerial.get(serial);
  }

  /** Every live session, as a snapshot: closing them while iterating is safe. */
  clients(): Client[] {
    return [...this.bySerial.values()];
  }

  clear(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.bySerial.clear();
  }

  private arm(client: Client, notAfterMs: number): void {
    const wait = notAfterMs - this.now();
    if (wait <= 0) return this.onExpired(client);
    const timer = setTimeout(() => (wait > MAX_TIMER_MS ? this.arm(client, notAfterMs) : this.onExpired(client)), Math.min(wait, MAX_TIMER_MS));
    timer.unref();
    this.timers.set(client, timer);
  }
}
