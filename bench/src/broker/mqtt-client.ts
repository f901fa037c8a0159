import { connect, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { generate, parser, type Packet } from 'mqtt-packet';

// A minimal MQTT 3.1.1 client over mTLS for the load generator: raw TLS sockets, PUBLISH
// frames encoded by hand, mqtt-packet only for parsing. mqtt.js would cost the generator
// (which shares the machine's cores with the broker under test) several times more CPU and
// memory per connection, and the figures here are about the broker.

/** One client identity: its name (the MQTT clientId) and a TLS context with its key and chain. */
export interface Credential {
  readonly name: string;
  readonly context: SecureContext;
}

export function credential(name: string, certChain: string, key: string, ca: string): Credential {
  return { name, context: createSecureContext({ cert: certChain, key, ca, minVersion: 'TLSv1.2' }) };
}

export interface OpenOptions {
  /** MQTT keep alive, seconds; default 60. */
  readonly keepaliveS?: number;
  /** CONNECT's clean session flag; default true. */
  readonly clean?: boolean;
  /** Deadline for TLS handshake + CONNACK, ms; default 10,000. */
  readonly timeoutMs?: number;
  /**
   * Packets after CONNACK. Without it the connection is parsed only up to CONNACK and
   * everything after is ignored (idle clients keep no parser).
   */
  readonly onPacket?: (packet: Packet) => void;
  /** Called after each chunk read has been parsed (with onPacket): a place to batch replies. */
  readonly afterChunk?: () => void;
}

const DISCONNECT = Buffer.of(0xe0, 0x00);
// MQTT 3.1.1 §3.2: CONNACK is 0x20, remaining length 2, session present flag, return code.
const CONNACK_LENGTH = 4;

/**
 * Opens a new TLS connection (full handshake: no session is resumed), sends CONNECT (a
 * clean session unless `clean: false`) and resolves once CONNACK accepts it; rejects on refusal, error or timeout.
 */
export function openMqtt(port: number, cred: Credential, opts: OpenOptions = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, secureContext: cred.context, minVersion: 'TLSv1.2' });
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error('no CONNACK in time')), opts.timeoutMs ?? 10_000);
    const onClose = () => fail(new Error('closed before CONNACK'));
    socket.once('error', fail);
    socket.once('close', onClose);
    socket.once('secureConnect', () => {
      socket.setNoDelay(true);
      socket.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: opts.clean ?? true, clientId: cred.name, keepalive: opts.keepaliveS ?? 60 }));
    });
    const accepted = () => {
      clearTimeout(timer);
      socket.off('error', fail);
      socket.off('close', onClose);
      socket.on('error', () => undefined);
      resolve(socket);
    };
    const onPacket = opts.onPacket;
    if (onPacket) {
      const p = parser({ protocolVersion: 4 });
      let connected = false;
      p.on('packet', (packet: Packet) => {
        if (connected) return onPacket(packet);
        if (packet.cmd !== 'connack' || packet.returnCode !== 0) return fail(new Error(`refused: ${packet.cmd} ${'returnCode' in packet ? packet.returnCode : ''}`));
        connected = true;
        accepted();
      });
      p.on('error', (err: Error) => socket.destroy(err));
      const afterChunk = opts.afterChunk;
      socket.on('data', (chunk: Buffer) => {
        p.parse(chunk);
        if (connected) afterChunk?.();
      });
    } else {
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        if (head.length < CONNACK_LENGTH) return;
        socket.off('data', onData);
        if (head[0] !== 0x20 || head[1] !== 0x02 || head[3] !== 0) return fail(new Error(`refused: ${head.subarray(0, 4).toString('hex')}`));
        accepted();
      };
      socket.on('data', onData);
    }
  });
}

/** Sends DISCONNECT [MQTT-3.14.4-1] and closes our side. */
export function disconnect(socket: TLSSocket): void {
  if (socket.destroyed) return;
  socket.end(DISCONNECT);
  // A peer that does not close within a second is cut.
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** Resolves when the socket has closed, or after `ms`. */
export function closed(socket: TLSSocket, ms = 2000): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** SUBSCRIBE with one filter; resolves with the granted QoS (0x80 is a refusal). */
export function subscribe(socket: TLSSocket, packets: PacketWaiter, filter: string, qos: 0 | 1): Promise<number> {
  socket.write(generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos }] }));
  return packets.next('suback', 5000).then((p) => (p.cmd === 'suback' ? (p.granted[0] as number) : 0x80));
}

/** Once the broker has answered a PINGREQ, whatever it wrote to this client before has arrived. */
export async function settled(c: { socket: TLSSocket; waiter: PacketWaiter }): Promise<void> {
  c.socket.write(Buffer.of(0xc0, 0x00));
  await c.waiter.next('pingresp', 5000);
}

/** Lets a caller await the next packet of one kind while a client's onPacket feeds it. */
export class PacketWaiter {
  private waiting: { cmd: Packet['cmd']; resolve: (p: Packet) => void } | undefined;

  /** Returns true when the packet was awaited (and so consumed). */
  offer(packet: Packet): boolean {
    if (this.waiting?.cmd !== packet.cmd) return false;
    const { resolve } = this.waiting;
    this.waiting = undefined;
    resolve(packet);
    return true;
  }

  next(cmd: Packet['cmd'], timeoutMs: number): Promise<Packet> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${cmd} in ${timeoutMs} ms`)), timeoutMs);
      this.waiting = {
        cmd,
        resolve: (p) => {
          clearTimeout(timer);
          resolve(p);
        },
      };
    });
  }
}

/**
 * A PUBLISH frame (MQTT 3.1.1 §3.3), QoS 0 or 1, no DUP, RETAIN only when asked; `packetId`
 * only for QoS 1. Hand-encoded: the generator writes tens of thousands per second.
 */
export function encodePublish(topic: Buffer, qos: 0 | 1, packetId: number, payload: Buffer, retain = false): Buffer {
  const remaining = 2 + topic.length + (qos ? 2 : 0) + payload.length;
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : 3;
  const frame = Buffer.allocUnsafe(1 + lengthBytes + remaining);
  let o = 0;
  frame[o++] = 0x30 | (qos << 1) | (retain ? 0x01 : 0);
  // §2.2.3 Remaining Length: 7 bits per byte, least significant first, continuation bit 0x80.
  let x = remaining;
  do {
    let byte = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) byte |= 0x80;
    frame[o++] = byte;
  } while (x > 0);
  o = frame.writeUInt16BE(topic.length, o);
  o += topic.copy(frame, o);
  if (qos) o = frame.writeUInt16BE(packetId, o);
  payload.copy(frame, o);
  return frame;
}

/** PUBACK (MQTT 3.1.1 §3.4) for a packet identifier. */
export function encodePuback(packetId: number): Buffer {
  return Buffer.of(0x40, 0x02, packetId >> 8, packetId & 0xff);
}
