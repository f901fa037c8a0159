/**
 * The few MQTT 3.1.1 packets a simulated device sends and receives, as bytes. A device
 * sends CONNECT, PUBLISH, PINGREQ and DISCONNECT and only ever receives CONNACK, PUBACK and
 * PINGRESP (it subscribes to nothing), so reading is a fixed header and at most two bytes.
 */

export const PACKET = { connack: 2, publish: 3, puback: 4, pingresp: 13 } as const;

export const PINGREQ = Buffer.from([0xc0, 0x00]);
export const DISCONNECT = Buffer.from([0xe0, 0x00]);

function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

function utf8Field(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

/** CONNECT with clientId, keepalive and the clean-session flag; no will, user name or password. */
export function connectPacket(clientId: string, keepaliveSeconds: number, clean: boolean): Buffer {
  const id = utf8Field(clientId);
  const variable = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, clean ? 0x02 : 0x00, keepaliveSeconds >> 8, keepaliveSeconds & 0xff]);
  const body = variable.length + id.length;
  return Buffer.concat([Buffer.from([0x10, ...remainingLength(body)]), variable, id]);
}

/** PUBLISH at QoS 0 (packetId ignored) or 1. Set the DUP flag on a copy with `withDup`. */
export function publishPacket(topic: string, payload: Buffer, qos: 0 | 1, packetId: number): Buffer {
  const t = utf8Field(topic);
  const body = t.length + (qos === 1 ? 2 : 0) + payload.length;
  const head = remainingLength(body);
  const out = Buffer.allocUnsafe(1 + head.length + body);
  out[0] = 0x30 | (qos << 1);
  let at = 1;
  for (const b of head) out[at++] = b;
  at += t.copy(out, at);
  if (qos === 1) at = out.writeUInt16BE(packetId, at);
  payload.copy(out, at);
  return out;
}

/** The same PUBLISH marked as a redelivery (MQTT 3.1.1 §3.3.1.1). */
export function withDup(publish: Buffer): Buffer {
  publish[0] = publish[0]! | 0x08;
  return publish;
}

export interface Frame {
  type: number;
  /** The low four bits of the first byte (DUP, QoS, RETAIN for a PUBLISH). */
  flags: number;
  /** The packet's body (variable header and payload). */
  body: Buffer;
}

/**
 * Splits a byte stream into MQTT packets. Holds at most one partial packet between reads;
 * packets bigger than `maxBytes` are an error (a device expects a few bytes at a time).
 */
export class FrameReader {
  private pending: Buffer | undefined;

  constructor(private readonly maxBytes = 64 * 1024) {}

  /** Every whole packet in `chunk` (and what was left over before it), in order. */
  push(chunk: Buffer, onFrame: (f: Frame) => void): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let at = 0;
    while (at < buf.length) {
      let len = 0;
      let mult = 1;
      let i = at + 1;
      let complete = false;
      for (; i < buf.length && i < at + 5; i++) {
        const byte = buf[i]!;
        len += (byte & 0x7f) * mult;
        mult *= 128;
        if ((byte & 0x80) === 0) {
          complete = true;
          i++;
          break;
        }
      }
      if (!complete) {
        if (i >= at + 5) throw new Error('malformed Remaining Length');
        break;
      }
      if (len > this.maxBytes) throw new Error(`a ${len}-byte packet is more than a device expects`);
      if (i + len > buf.length) break;
      onFrame({ type: buf[at]! >> 4, flags: buf[at]! & 0x0f, body: buf.subarray(i, i + len) });
      at = i + len;
    }
    if (at < buf.length) this.pending = Buffer.from(buf.subarray(at));
  }
}
