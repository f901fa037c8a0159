import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import { guardOf } from '../server/connection-guard.js';
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

/** The parts of mqtt-packet's Parser that Aedes uses and this module needs. */
interface MqttParser extends EventEmitter {
  parse(buf: Buffer): number;
  /** The CONNECT packet once parsed (mqtt-packet keeps it as its settings). */
  settings: { protocolVersion?: number };
  error: Error | null;
  /** Set by Aedes right after it makes the parser. */
  client?: { conn?: unknown };
  _emitError(err: Error): void;
}
type ParserFactory = ((opt?: unknown) => MqttParser) & { [INSTALLED]?: true };

const INSTALLED = Symbol('tlsfleet.publishReader');
const PUBLISH = 3;

let readHere = 0;
let acknowledgementsReadHere = 0;

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

/**
 * One connection's reads, cut into whole packets: each PUBLISH and each acknowledgement of
 * one read by readPublish or readAcknowledgement and emitted as mqtt-packet would emit it,
 * every other packet handed whole to mqtt-packet's own parse, whose buffer is therefore
 * empty between packets. A packet that spans reads is held (copied, so an idle connection
 * pins no read buffer) until its last byte arrives.
 */
class PacketCutter {
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** The held packet's total length, 0 while its fixed header is incomplete. */
  private wanted = 0;
  /** Reads handed in while a packet of an earlier read was being handled (Aedes may read again from inside a handler). */
  private queued: Buffer[] | undefined;
  private cutting = false;
  /** The fixed header's length, from the last frameAt. */
  private headerBytes = 0;

  constructor(private readonly parser: MqttParser) {}

  /** Nothing held of a packet, and not inside a parse. */
  get atBoundary(): boolean {
    return this.heldBytes === 0 && !this.cutting;
  }

  parse(chunk: Buffer): number {
    if (this.cutting) {
      (this.queued ??= []).push(chunk);
      return 0;
    }
    this.cutting = true;
    try {
      for (let next: Buffer | undefined = chunk; next !== undefined; next = this.queued?.shift()) this.take(next);
    } finally {
      this.cutting = false;
    }
    return this.heldBytes;
  }

  private take(chunk: Buffer): void {
    let buf = chunk;
    if (this.heldBytes > 0) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (this.wanted > 0 && this.heldBytes < this.wanted) return;
      buf = Buffer.concat(this.held, this.heldBytes);
      this.held = [];
      this.heldBytes = 0;
      this.wanted = 0;
    }
    let at = 0;
    while (at < buf.length) {
      const total = this.frameAt(buf, at);
      if (total < 0) {
        // Malformed: mqtt-packet says so, as before.
        viaMqttPacket(this.parser, buf.subarray(at));
        this.queued = undefined;
        return;
      }
      if (total === 0 || at + total > buf.length) {
        this.held = [Buffer.from(buf.subarray(at))];
        this.heldBytes = buf.length - at;
        this.wanted = total;
        return;
      }
      const end = at + total;
      if (!this.handle(buf, at, end, this.headerBytes)) {
        this.queued = undefined;
        return;
      }
      at = end;
    }
  }

  /**
   * The total length of the packet starting at buf[at], fixed header and body, with the
   * fixed header's length left in headerBytes; 0 while the fixed header is incomplete, -1
   * when its Remaining Length runs past four bytes (§2.2.3). The connection guard cuts such
   * a connection as it reads it; this is for anything that gets past it.
   */
  private frameAt(buf: Buffer, at: number): number {
    let length = 0;
    let multiplier = 1;
    for (let i = at + 1; i < buf.length && i <= at + 4; i++) {
      const byte = buf[i] as number;
      length += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) {
        this.headerBytes = i - at + 1;
        return this.headerBytes + length;
      }
      multiplier *= 128;
    }
    return buf.length - at > 4 ? -1 : 0;
  }

  /** False once the parser has failed: the rest of the connection's bytes are dropped, as mqtt-packet drops them. */
  private handle(buf: Buffer, start: number, end: number, headerBytes: number): boolean {
    const parser = this.parser;
    const version = parser.settings.protocolVersion;
    if (version === 4 || version === 3) {
      if ((buf[start] as number) >> 4 === PUBLISH) {
        const packet = readPublish(buf, start, end, headerBytes);
        if (packet === 'no_identifier') {
          parser._emitError(new Error('Cannot parse messageId'));
          return false;
        }
        if (packet !== undefined) {
          readHere++;
          parser.emit('packet', packet);
          return true;
        }
      } else {
        const ack = readAcknowledgement(buf, start);
        if (ack !== undefined) {
          acknowledgementsReadHere++;
          parser.emit('packet', ack);
          return true;
        }
      }
    }
    viaMqttPacket(parser, buf.subarray(start, end));
    return parser.error === null;
  }
}

const CUTTER = Symbol('tlsfleet.packetCutter');
type Cutting = MqttParser & { [CUTTER]?: PacketCutter | null };
/** mqtt-packet's own Parser.prototype.parse, taken from the first parser installPublishReader's factory makes. */
let mqttPacketParse: MqttParser['parse'] | undefined;

/** `buf` through mqtt-packet's own parse of `parser`. */
function viaMqttPacket(parser: MqttParser, buf: Buffer): number {
  return (mqttPacketParse as MqttParser['parse']).call(parser, buf);
}

/** The parse of every parser made after installPublishReader; decides on the first read, once the parser knows its connection. */
function cuttingParse(this: Cutting, buf: Buffer): number {
  let cutter = this[CUTTER];
  if (cutter === undefined) cutter = this[CUTTER] = guardOf(this.client?.conn) === undefined ? null : new PacketCutter(this);
  return cutter === null ? viaMqttPacket(this, buf) : cutter.parse(buf);
}

/**
 * Makes the MQTT parsers Aedes creates read PUBLISH packets and their acknowledgements from
 * guarded connections themselves. In bench:broker's QoS 0 load, mqtt-packet's parser, its
 * buffer list (`bl`, which slices or copies at each of the four states of every packet)
 * and its `debug` calls took about a quarter of the broker's CPU; at QoS 1, with PUBLISH
 * read here, the subscriber's PUBACKs still cost ~15 % through it. Aedes 1.x calls
 * `mqtt.parser()` on mqtt-packet's module object for each client, so that factory is
 * replaced on the copy Aedes loads; the parser it returns is mqtt-packet's own, with `parse` cutting reads into
 * whole packets on guarded connections (see PacketCutter) and unchanged on any other.
 * Idempotent; call once at start-up.
 */
export function installPublishReader(): void {
  const mqttPacket = createRequire(import.meta.resolve('aedes'))('mqtt-packet') as { parser: ParserFactory };
  if (mqttPacket.parser[INSTALLED]) return;
  const makeParser = mqttPacket.parser;
  const parser = (opt?: unknown): MqttParser => {
    const made = makeParser(opt) as Cutting;
    mqttPacketParse ??= made.parse;
    made.parse = cuttingParse;
    return made;
  };
  mqttPacket.parser = Object.assign(parser, { [INSTALLED]: true as const });
}

/**
 * Whether `parser` (an Aedes client's) cuts reads here — a guarded connection on MQTT 3.1 or
 * 3.1.1 that has read its CONNECT — holds no part of a packet and is not inside a parse:
 * a read taken elsewhere would leave it exactly as it is.
 */
export function readsFromPacketBoundary(parser: unknown): boolean {
  const cutter = (parser as Cutting)[CUTTER];
  const version = (parser as Cutting).settings?.protocolVersion;
  return cutter !== undefined && cutter !== null && cutter.atBoundary && (version === 4 || version === 3);
}

/** PUBLISH packets read by readPublish in this process, for tests that Aedes still reads through it. */
export function publishesReadHere(): number {
  return readHere;
}

/** Acknowledgements read by readAcknowledgement in this process, likewise. */
export function acknowledgementsRead(): number {
  return acknowledgementsReadHere;
}
