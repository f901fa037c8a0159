/**
 * Adaptation 3 (aedes/index.ts): mqtt-packet's parser factory, replaced on the copy Aedes loads.
 *
 * What mqtt-packet 9 does: a general-purpose streaming parser (a buffer list that slices or
 * copies at each of a packet's four states, debug calls on every step); Aedes 1.2 calls
 * `mqtt.parser()` on that module object for each client.
 * Why we change it: it took about a quarter of the broker's CPU in bench:broker's QoS 0
 * load, and ~15 % at QoS 1 for the subscribers' PUBACKs. On guarded connections the parser
 * it makes cuts reads into whole packets and reads PUBLISH and its acknowledgements with
 * wire/publish-reader.ts; every other packet still goes through mqtt-packet's own parse.
 * Upstream: none asks for this (the cost of a general parser). Record:
 * docs/internals/publish-reader.md.
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { guardOf } from '../server/connection-guard.js';
import { readFixedHeader, LengthState, type FixedHeader } from '../wire/fixed-header.js';
import { readAcknowledgement, readPublish } from '../wire/publish-reader.js';

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

/** Read into and copied out at once: one for every connection. */
const header: FixedHeader = { headerBytes: 0, remainingLength: 0, minimal: true };

let readHere = 0;
let acknowledgementsReadHere = 0;

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
    const state = readFixedHeader(buf, at, header);
    if (state === LengthState.Malformed) return -1;
    if (state === LengthState.More) return 0;
    this.headerBytes = header.headerBytes;
    return this.headerBytes + header.remainingLength;
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
