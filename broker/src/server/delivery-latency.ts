import type { Histogram } from 'prom-client';

/** One inbound PUBLISH in this many is timed to its deliveries. */
const SAMPLE_EVERY = 64;

/**
 * Samples delivery latency (PUBLISH received → handed to a subscriber's connection), on the
 * path Aedes routes and on the publish relay (aedes/publish-relay.ts) alike: every
 * SAMPLE_EVERY-th authorized publish is remembered by its payload buffer, which Aedes
 * passes by reference to each delivery, and each delivery of that buffer is observed. A
 * decrement per publish and a pointer compare per delivery: no prom-client call per
 * message. A message that crossed Redis arrives in a new buffer and is not sampled.
 */
export class DeliveryLatency {
  private countdown = SAMPLE_EVERY;
  private payload: unknown;
  private at = 0;

  constructor(private readonly histogram: Histogram) {}

  /** A publish accepted from a client. */
  received(payload: unknown): void {
    if (--this.countdown > 0) return;
    this.countdown = SAMPLE_EVERY;
    // An empty payload may be a shared buffer: it could not tell messages apart.
    if (!Buffer.isBuffer(payload) || payload.length === 0) return;
    this.payload = payload;
    this.at = performance.now();
  }

  /** A delivery about to be written to a subscriber. */
  delivered(payload: unknown): void {
    if (payload === this.payload) this.histogram.observe((performance.now() - this.at) / 1000);
  }
}
