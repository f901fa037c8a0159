/**
 * Adaptation 10, client step 3 (aedes/index.ts). What Aedes does: one function is both its
 * per-packet done callback and its connection's 'readable' listener, so every 'readable' lets one
 * more read through while a packet waits. Why we change it: a slow subscriber's publishers were
 * read on without bound (50 MB buffered). Upstream: none found; moscajs/aedes#154 (backpressure)
 * and #363 are related. Record: docs/internals/read-gate.md.
 */
import type { ClientStep } from './client-steps.js';

/** The parts of an Aedes 1.2 client its read loop is made of. */
interface ReadingClient {
  /** Packets read and not yet handled, plus 1 before the first read. */
  readonly _parsingBatch: number;
  readonly _paused: boolean;
  /** Reads on when `_parsingBatch`, which it decrements, reaches 0. */
  readonly _nextBatch: () => void;
}

/**
 * Aedes reads a client's next bytes only once every packet it read before has been handled
 * — a QoS 0 delivery to a subscriber whose socket is full is handled at its 'drain' — and so
 * a slow subscriber holds its publishers back through TCP. But the same function is its
 * per-packet done callback and its connection's 'readable' listener, and each call counts
 * one packet done: every 'readable' while a packet waits lets one more read through.
 * Whenever a read holds no more than one whole packet — a publisher writing one message at
 * a time, or messages larger than one TLS record — the broker reads on regardless and
 * buffers for the stalled subscriber without bound (measured: 3,072 messages of 16 KiB,
 * all 50 MB read while the subscriber read nothing).
 *
 * So 'readable' starts a read only when nothing read is still being handled, or for the
 * client's first read (Aedes counts that one in advance). A read held back is not lost:
 * the last packet's done callback reads whatever is buffered by then. A step on each client
 * as Aedes makes it.
 */
export function gateReads(): ClientStep {
  return (made, conn) => {
    const client = made as unknown as ReadingClient;
    let firstRead = true;
    conn.off('readable', client._nextBatch);
    conn.on('readable', () => {
      if (client._parsingBatch > 0 && !firstRead) return;
      if (!client._paused) firstRead = false;
      client._nextBatch();
    });
  };
}
