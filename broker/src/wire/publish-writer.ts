import { acknowledgementHeader } from './mqtt-acknowledgements.js';

/** The PUBLISH fields Aedes hands mqtt-packet (MQTT 3.1.1 §3.3). */
export interface PublishFields {
  readonly cmd: string;
  readonly topic?: unknown;
  readonly payload?: unknown;
  readonly qos?: unknown;
  readonly dup?: unknown;
  readonly retain?: unknown;
  readonly messageId?: unknown;
}

/** §2.2.3: the largest Remaining Length four bytes can carry. */
const MAX_REMAINING_LENGTH = 268_435_455;
const EMPTY = Buffer.alloc(0);

/**
 * The whole PUBLISH, fixed header to payload, in one buffer, as mqtt-packet 9's
 * writeToStream writes it for protocol level 4 (which Aedes 1.x always asks for: it passes
 * no options); undefined for anything that is not plainly valid (a non-string topic, a QoS
 * outside 0–2, a missing or out-of-range packet identifier, an oversize packet), which is
 * left to mqtt-packet so that its errors stay what they were.
 */
export function encodePublish(packet: PublishFields): Buffer | undefined {
  const { topic, messageId } = packet;
  const payload = packet.payload ?? EMPTY;
  const qos = packet.qos ?? 0;
  if (typeof topic !== 'string' || (qos !== 0 && qos !== 1 && qos !== 2)) return undefined;
  if (qos > 0 && !(Number.isInteger(messageId) && (messageId as number) >= 0 && (messageId as number) <= 0xffff)) return undefined;
  const topicBytes = Buffer.byteLength(topic);
  let payloadBytes: number;
  if (Buffer.isBuffer(payload)) payloadBytes = payload.length;
  else if (typeof payload === 'string') payloadBytes = Buffer.byteLength(payload);
  else return undefined;
  // §3.3.2: topic length prefix and topic, the packet identifier from QoS 1 on, then the payload.
  const remaining = 2 + topicBytes + (qos > 0 ? 2 : 0) + payloadBytes;
  if (topicBytes > 0xffff || remaining > MAX_REMAINING_LENGTH) return undefined;
  const lengthBytes = remaining < 0x80 ? 1 : remaining < 0x4000 ? 2 : remaining < 0x200000 ? 3 : 4;
  const out = Buffer.allocUnsafe(1 + lengthBytes + remaining);
  // §3.3.1: type 3, then DUP, QoS and RETAIN in the low nibble.
  out[0] = 0x30 | (packet.dup ? 0x08 : 0) | (qos << 1) | (packet.retain ? 0x01 : 0);
  let at = 1;
  // §2.2.3: seven bits per byte, low first, the top bit saying another byte follows.
  for (let rest = remaining; ; ) {
    const low = rest % 0x80;
    rest = Math.floor(rest / 0x80);
    out[at++] = rest > 0 ? low | 0x80 : low;
    if (rest === 0) break;
  }
  out.writeUInt16BE(topicBytes, at);
  at += 2;
  // allocUnsafe: every byte is written below, and a string that encoded shorter than
  // Buffer.byteLength measured would leave stale pool memory in the frame, so it is dropped.
  if (out.write(topic, at, topicBytes, 'utf8') !== topicBytes) return undefined;
  at += topicBytes;
  if (qos > 0) {
    out.writeUInt16BE(messageId as number, at);
    at += 2;
  }
  if (typeof payload === 'string') {
    if (out.write(payload, at, payloadBytes, 'utf8') !== payloadBytes) return undefined;
  } else payload.copy(out, at);
  return out;
}

/**
 * A PUBACK, PUBREC, PUBREL or PUBCOMP as mqtt-packet 9 writes it at protocol level 4: the
 * header byte, Remaining Length 2 and the packet identifier; undefined for any other
 * packet, for an identifier that is not an integer from 0 to 65535 and for a PUBREL with
 * DUP (§3.6.1 forbids it; mqtt-packet throws), all left to mqtt-packet.
 */
export function encodeAcknowledgement(packet: PublishFields): Buffer | undefined {
  const header = acknowledgementHeader(packet.cmd);
  const id = packet.messageId;
  if (header === undefined || !(Number.isInteger(id) && (id as number) >= 0 && (id as number) <= 0xffff)) return undefined;
  // mqtt-packet ignores DUP on every other acknowledgement.
  if (packet.cmd === 'pubrel' && packet.dup) return undefined;
  const out = Buffer.allocUnsafe(4);
  out[0] = header;
  out[1] = 2;
  out.writeUInt16BE(id as number, 2);
  return out;
}
