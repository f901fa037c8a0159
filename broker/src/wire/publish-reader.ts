import { acknowledgementOf, type AcknowledgementCmd } from './mqtt-acknowledgements.js';

/** The packet object mqtt-packet 9's parser emits for a PUBLISH at protocol levels 3 and 4. */
export interface ReadPublish {
  cmd: 'publish';
  retain: boolean;
  qos: 0 | 1 | 2;
  dup: boolean;
  /** The Remaining Length (§2.2.3). */
  length: number;
  topic: string;
  payload: Buffer;
  messageId?: number;
}

/** The object mqtt-packet 9 emits for a PUBACK, PUBREC, PUBREL or PUBCOMP at protocol levels 3 and 4. */
export interface ReadAcknowledgement {
  cmd: AcknowledgementCmd;
  retain: false;
  /** 1 for PUBREL, whose fixed header flags are 0b0010 (§3.6.1), as mqtt-packet reads them. */
  qos: 0 | 1;
  dup: false;
  length: 2;
  topic: null;
  payload: null;
  messageId: number;
}


/**
 * Reads the PUBACK, PUBREC, PUBREL or PUBCOMP whole at buf[start] into the object
 * mqtt-packet 9 emits for it at protocol levels 3 and 4; undefined for any other packet,
 * and for one whose flags or length are not exactly what §3.4–3.7 prescribe (two bytes of
 * packet identifier), which is left to mqtt-packet.
 */
export function readAcknowledgement(buf: Buffer, start: number): ReadAcknowledgement | undefined {
  const cmd = acknowledgementOf(buf[start] as number);
  // Remaining Length 2 in one byte: the whole packet is four bytes from start.
  if (cmd === undefined || buf[start + 1] !== 2) return undefined;
  return { cmd, retain: false, qos: cmd === 'pubrel' ? 1 : 0, dup: false, length: 2, topic: null, payload: null, messageId: buf.readUInt16BE(start + 2) };
}

/**
 * Reads the PUBLISH in buf[start, end) — a whole packet, fixed header included — into the
 * object mqtt-packet 9 emits for it at protocol levels 3 and 4; undefined when it is not
 * plainly valid (QoS 3, a topic longer than the packet), which is left to mqtt-packet so
 * that its errors stay what they were. The payload is a view of buf, as mqtt-packet's is
 * when the packet sits in one read. A QoS 1 or 2 PUBLISH too short for its packet
 * identifier is `'no_identifier'`: mqtt-packet would read one from the next packet's bytes.
 */
export function readPublish(buf: Buffer, start: number, end: number, headerBytes: number): ReadPublish | 'no_identifier' | undefined {
  const flags = (buf[start] as number) & 0x0f;
  // §3.3.1: DUP, QoS and RETAIN in the low nibble.
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) return undefined;
  const topicAt = start + headerBytes + 2;
  if (topicAt > end) return undefined;
  const topicEnd = topicAt + buf.readUInt16BE(topicAt - 2);
  if (topicEnd > end) return undefined;
  const retain = (flags & 0x01) !== 0;
  const dup = (flags & 0x08) !== 0;
  const length = end - start - headerBytes;
  const topic = buf.toString('utf8', topicAt, topicEnd);
  if (qos === 0) return { cmd: 'publish', retain, qos, dup, length, topic, payload: buf.subarray(topicEnd, end) };
  if (end - topicEnd < 2) return 'no_identifier';
  return { cmd: 'publish', retain, qos: qos as 1 | 2, dup, length, topic, payload: buf.subarray(topicEnd + 2, end), messageId: buf.readUInt16BE(topicEnd) };
}
