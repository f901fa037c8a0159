import type { Server } from 'node:net';

/**
 * One cap on the connections the broker's MQTT listeners (mqtts and wss) hold together, so
 * that both full never take the descriptors the health port, the store, logs and watched
 * files need (the cap sits below the open-file limit: connectionCapBelow). Each listener
 * also gets the cap as Node's own maxConnections, which refuses before 'connection' ('drop').
 */
export class ConnectionBudget {
  private open = 0;
  private refusedSinceReport = 0;
  private lastReport = 0;

  constructor(
    readonly max: number,
    /** A connection closed at once for want of budget, by the listener that accepted it. */
    private readonly onRefused: (listener: 'mqtts' | 'wss') => void,
    /** At most once a second while refusing, for one log line per flood rather than per connection. */
    private readonly onFull: (refused: number) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts every connection `server` accepts; one past the budget is closed at once. */
  watch(server: Server, listener: 'mqtts' | 'wss'): void {
    server.maxConnections = this.max;
    server.on('drop', () => this.refuse(listener));
    server.on('connection', (socket: { destroy(): void; once(event: 'close', cb: () => void): void }) => {
      if (this.open >= this.max) {
        socket.destroy();
        this.refuse(listener);
        return;
      }
      this.open++;
      socket.once('close', () => this.open--);
    });
  }

  private refuse(listener: 'mqtts' | 'wss'): void {
    this.onRefused(listener);
    this.refusedSinceReport++;
    const now = this.now();
    if (now - this.lastReport < 1_000) return;
    this.lastReport = now;
    this.onFull(this.refusedSinceReport);
    this.refusedSinceReport = 0;
  }

  /** Connections counted now. */
  get inUse(): number {
    return this.open;
  }
}
