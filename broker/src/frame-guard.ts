import { Duplex } from 'node:stream';
import type { Acl, IdentityAcl, PeerCertificate } from '@tlsfleet/common';

export type FrameViolation = 'packet_too_large' | 'malformed_length';

/** Where byte counts go (the broker's Prometheus counters); both default to no-ops. */
export interface ByteMeter {
  in(bytes: number): void;
  out(bytes: number): void;
}

const NO_METER: ByteMeter = { in: () => undefined, out: () => undefined };

/**
 * The connection Aedes sees: a pass-through Duplex over the transport (the TLS socket, or a
 * WebSocket stream over one) that reads each MQTT
 * fixed header (MQTT 3.1.1 §2.2) and destroys the connection as soon as a packet announces
 * a Remaining Length over the cap, before its bytes are buffered: Aedes 1.x and
 * mqtt-packet have no packet-size limit and would buffer a 64 MiB PUBLISH in full.
 * It also carries the verified peer identity to the hooks and counts bytes.
 */
export class FrameGuard extends Duplex {
  /** The byte stream the MQTT packets travel on: the TLS socket, or a WebSocket stream (wss). */
  readonly socket: Duplex;
  readonly peer: PeerCertificate;
  /** Why the broker refused this connection in preConnect, for authenticate to answer CONNACK 5. */
  refusal: string | undefined;
  /** The client's address for logs: the PROXY header's source behind a load balancer, else the TCP peer. */
  clientAddress: string | undefined;
  /** The ACL bound to this identity, and the policy it was bound from (reloads rebind). */
  private bound: { source: Acl; acl: IdentityAcl } | undefined;
  bytesIn = 0;
  bytesOut = 0;
  private readonly maxPacketBytes: number;
  private readonly onViolation: (v: FrameViolation) => void;
  /** Bytes of the current packet's body still to pass; -1 while reading a fixed header. */
  private remaining = -1;
  private headerBytes = 0;
  private length = 0;
  private multiplier = 1;

  private readonly meter: ByteMeter;

  constructor(socket: Duplex, peer: PeerCertificate, maxPacketBytes: number, onViolation: (v: FrameViolation) => void, meter: ByteMeter = NO_METER) {
    super({ allowHalfOpen: false });
    this.meter = meter;
    this.socket = socket;
    this.peer = peer;
    this.maxPacketBytes = maxPacketBytes;
    this.onViolation = onViolation;
    socket.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      this.meter.in(chunk.length);
      const violation = this.inspect(chunk);
      if (violation) {
        this.onViolation(violation);
        this.destroy();
        return;
      }
      if (!this.push(chunk)) socket.pause();
    });
    socket.once('end', () => this.push(null));
    socket.once('close', () => this.destroy());
    socket.on('error', (err) => this.destroy(err));
  }

  aclFrom(policy: Acl): IdentityAcl {
    if (this.bound?.source !== policy) this.bound = { source: policy, acl: policy.forIdentity(this.peer.identity) };
    return this.bound.acl;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytesOut += chunk.length;
    this.meter.out(chunk.length);
    this.socket.write(chunk, cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    let all = 0;
    for (const c of chunks) all += c.chunk.length;
    this.bytesOut += all;
    this.meter.out(all);
    this.socket.write(chunks.length === 1 ? (chunks[0] as { chunk: Buffer }).chunk : Buffer.concat(chunks.map((c) => c.chunk), all), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.socket.end(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.destroy();
    cb(err);
  }

  /** Walks the packet boundaries in `chunk`; returns a violation as soon as one is announced. */
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
      if (this.headerBytes === 0) {
        this.headerBytes = 1;
        this.length = 0;
        this.multiplier = 1;
        continue;
      }
      this.length += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.headerBytes++;
      if (byte & 0x80) {
        if (this.headerBytes > 4) return 'malformed_length';
        continue;
      }
      if (this.length + this.headerBytes > this.maxPacketBytes) return 'packet_too_large';
      this.headerBytes = 0;
      this.remaining = this.length === 0 ? -1 : this.length;
    }
    return undefined;
  }
}
