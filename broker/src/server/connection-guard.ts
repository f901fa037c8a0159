import { Duplex, Readable, Writable } from 'node:stream';
import type { Acl, IdentityAcl, PeerCertificate } from '@tlsfleet/common';
import { LengthState, RemainingLengthDecoder } from '../wire/fixed-header.js';

export type FrameViolation = 'packet_too_large' | 'malformed_length';

/** Bytes read from and written to clients, as plain numbers (folded into Prometheus at scrape time). */
export interface ByteTally {
  in: number;
  out: number;
}

/** Takes a read of `guard`'s connection before Aedes sees it; true when it did (aedes/publish-relay.ts). */
export type TakesRead = (guard: ConnectionGuard, chunk: Buffer) => boolean;

const GUARD = Symbol('tlsfleet.connectionGuard');

interface PendingWrites {
  chunks: Buffer[];
  bytes: number;
  /** Made on the first write with a callback (Aedes passes none). */
  callbacks: WriteCallback[] | undefined;
  /** A write returned false: the writer waits for 'drain'. */
  owesDrain: boolean;
}
type Guarded = Duplex & { [GUARD]: ConnectionGuard };

/**
 * What the broker knows about one connection: the verified peer identity (for the connect
 * steps and the ACL hooks), why it was refused, and the state of the check that caps
 * packet sizes. Aedes is handed the transport itself (the TLS socket, or a WebSocket stream
 * over one): without the pass-through Duplex that used to sit in between, QoS 0 messages
 * per broker CPU-second rose ~4 % (A/B, 6 alternating rounds).
 */
export class ConnectionGuard {
  readonly peer: PeerCertificate;
  /** Why the broker refused this connection in preConnect, for authenticate to answer CONNACK 5. */
  refusal: string | undefined;
  /** The ACL bound to this identity, and the policy it was bound from (reloads rebind). */
  private bound: { source: Acl; acl: IdentityAcl } | undefined;
  private readonly addressOf: () => string | undefined;
  private readonly maxPacketBytes: number;
  private readonly onViolation: (v: FrameViolation) => void;
  private readonly tally: ByteTally;
  /** Takes a read before it is buffered for Aedes, when it answers true (see aedes/publish-relay.ts). */
  readonly takesRead: TakesRead | undefined;
  /** What Aedes wrote in this turn of the event loop, sent at the next (see guardConnection). */
  readonly out: PendingWrites = { chunks: [], bytes: 0, callbacks: undefined, owesDrain: false };
  /** Bytes of the current packet's body still to pass; -1 while reading a fixed header. */
  private remaining = -1;
  /** Inside a fixed header, past its type byte. */
  private inHeader = false;
  private readonly length = new RemainingLengthDecoder();

  constructor(peer: PeerCertificate, opts: { maxPacketBytes: number; onViolation: (v: FrameViolation) => void; tally: ByteTally; addressOf?: () => string | undefined; takesRead?: TakesRead }) {
    this.peer = peer;
    this.takesRead = opts.takesRead;
    this.maxPacketBytes = opts.maxPacketBytes;
    this.onViolation = opts.onViolation;
    this.tally = opts.tally;
    this.addressOf = opts.addressOf ?? (() => undefined);
  }

  /** The client's address for logs: the PROXY header's source behind a load balancer, else the TCP peer; read when first needed. */
  get clientAddress(): string | undefined {
    return this.addressOf();
  }

  aclFrom(policy: Acl): IdentityAcl {
    if (this.bound?.source !== policy) this.bound = { source: policy, acl: policy.forIdentity(this.peer.identity) };
    return this.bound.acl;
  }

  /** Counts and checks bytes read; false (after reporting the violation) when the connection must be cut. */
  admit(chunk: Buffer): boolean {
    this.tally.in += chunk.length;
    const violation = this.inspect(chunk);
    if (!violation) return true;
    this.onViolation(violation);
    return false;
  }

  countOut(bytes: number): void {
    this.tally.out += bytes;
  }

  /**
   * Walks the MQTT fixed headers (MQTT 3.1.1 §2.2) in `chunk`; returns a violation as soon as
   * a packet announces a Remaining Length over the cap, before its body is buffered: Aedes
   * 1.x and mqtt-packet have no packet-size limit and would buffer a 64 MiB PUBLISH in full.
   */
  private inspect(chunk: Buffer): FrameViolation | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - i);
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) this.remaining = -1;
        continue;
      }
      // Fixed header: one type/flags byte, then 1–4 bytes of Remaining Length (§2.2.3).
      const byte = chunk[i++] as number;
      if (!this.inHeader) {
        this.inHeader = true;
        this.length.reset();
        continue;
      }
      const state = this.length.next(byte);
      if (state === LengthState.More) continue;
      if (state === LengthState.Malformed) return 'malformed_length';
      if (this.length.value + 1 + this.length.bytes > this.maxPacketBytes) return 'packet_too_large';
      this.inHeader = false;
      this.remaining = this.length.value === 0 ? -1 : this.length.value;
    }
    return undefined;
  }
}

/**
 * Attaches `guard` to `transport` and returns the transport, for Aedes: every chunk the
 * transport reads passes `guard.admit` before it is buffered (Node's sockets and ws'
 * streams hand their reads to `push`), and what Aedes writes in one turn of the event loop
 * is gathered here and written once at the next (setImmediate), as one buffer: one TLS
 * record, one system call, one ws frame. mqtt-packet writes each packet in 3–5 pieces and
 * Aedes each delivery in its own setImmediate; handing every piece to Writable.write, even
 * corked, cost a buffered-request object and its bookkeeping per piece. Aedes' refusals
 * write CONNACK and close in a later setImmediate, after the flush; end() flushes first.
 * The hooks are shared functions: nothing is allocated per connection beyond the guard.
 */
export function guardConnection(transport: Duplex, guard: ConnectionGuard): Duplex {
  const guarded = transport as Guarded;
  guarded[GUARD] = guard;
  guarded.push = guardedPush;
  guarded.write = gatheringWrite as Duplex['write'];
  guarded.end = flushingEnd as Guarded['end'];
  // Writes that queue behind a busy socket still leave as one buffer: Node's TLS socket
  // makes a record per buffer of a writev, and ws' stream a frame per chunk.
  guarded._writev = concatenatingWritev;
  return guarded;
}

/** The guard of a connection Aedes was handed; undefined for anything else (deny by default). */
export function guardOf(conn: unknown): ConnectionGuard | undefined {
  return (conn as Partial<Guarded> | null | undefined)?.[GUARD];
}

function guardedPush(this: Guarded, chunk: unknown, encoding?: BufferEncoding): boolean {
  if (chunk !== null && !this.destroyed) {
    const guard = this[GUARD];
    if (!guard.admit(chunk as Buffer)) {
      this.destroy();
      return false;
    }
    if (guard.takesRead?.(guard, chunk as Buffer)) return true;
  }
  return Readable.prototype.push.call(this, chunk, encoding);
}

function gatheringWrite(this: Guarded, data: Buffer | string, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): boolean {
  const callback = typeof encoding === 'function' ? encoding : cb;
  // mqtt-packet writes topics as strings.
  const chunk = typeof data === 'string' ? Buffer.from(data, typeof encoding === 'string' ? encoding : 'utf8') : data;
  if (this.destroyed || this.writableEnded) {
    // Writable reports the error (write after end, destroyed) as it always does.
    return (Writable.prototype.write as (this: Duplex, ...args: unknown[]) => boolean).call(this, chunk, callback);
  }
  const out = this[GUARD].out;
  if (out.chunks.length === 0) setImmediate(flush, this);
  out.chunks.push(chunk);
  out.bytes += chunk.length;
  if (callback) (out.callbacks ??= []).push(callback);
  if (this.writableLength + out.bytes < this.writableHighWaterMark) return true;
  // The caller now waits for 'drain' (Aedes does): owed even if the flush's write fits.
  out.owesDrain = true;
  return false;
}

function flushingEnd(this: Guarded, ...args: unknown[]): Guarded {
  flush(this);
  return (Duplex.prototype.end as (this: Duplex, ...a: unknown[]) => Duplex).apply(this, args) as Guarded;
}

function flush(stream: Guarded): void {
  const guard = stream[GUARD];
  const out = guard.out;
  if (out.chunks.length === 0) return;
  const data = out.chunks.length === 1 ? (out.chunks[0] as Buffer) : Buffer.concat(out.chunks, out.bytes);
  const { callbacks, owesDrain } = out;
  out.chunks.length = 0;
  out.bytes = 0;
  out.callbacks = undefined;
  out.owesDrain = false;
  guard.countOut(data.length);
  const done = callbacks && ((err?: Error | null) => {
    for (const cb of callbacks) cb(err);
  });
  // Destroyed or ended since the chunks were gathered: Writable reports it to the callbacks.
  const fits = (Writable.prototype.write as (this: Duplex, ...args: unknown[]) => boolean).call(stream, data, done);
  // When this write does not fit, Writable emits 'drain' itself once it has drained.
  if (owesDrain && fits && !stream.destroyed) process.nextTick(emitDrain, stream);
}

function emitDrain(stream: Duplex): void {
  stream.emit('drain');
}

/** Writes the queued chunks as one, through the stream's single-chunk `_write`. */
function concatenatingWritev(this: Duplex, chunks: { chunk: Buffer }[], cb: WriteCallback): void {
  this._write(Buffer.concat(chunks.map((c) => c.chunk)), 'buffer' as BufferEncoding, cb);
}

type WriteCallback = (err?: Error | null) => void;
