import type { Aedes } from 'aedes';

/** The parts of an Aedes 1.2 client its read loop is made of. */
interface ReadingClient {
  readonly conn: NodeJS.EventEmitter;
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
 * the last packet's done callback reads whatever is buffered by then. Call once, right
 * after the broker is made.
 */
export function gateReads(aedes: Aedes): void {
  const handle = aedes.handle;
  aedes.handle = (conn, req) => {
    const client = handle(conn, req) as unknown as ReadingClient;
    let firstRead = true;
    conn.off('readable', client._nextBatch);
    conn.on('readable', () => {
      if (client._parsingBatch > 0 && !firstRead) return;
      if (!client._paused) firstRead = false;
      client._nextBatch();
    });
    return client as unknown as ReturnType<typeof handle>;
  };
}
