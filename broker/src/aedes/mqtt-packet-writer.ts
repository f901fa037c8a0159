/**
 * Adaptation 2 (aedes/index.ts): mqtt-packet's writeToStream, replaced on the copy Aedes loads.
 *
 * What mqtt-packet 9 does: it writes a PUBLISH in four to six stream writes (header byte,
 * length, topic length, topic, identifier, payload) and a PUBACK in three, plus a cork and
 * a nextTick to uncork; Aedes 1.2 calls `mqtt.writeToStream` on that module object for every
 * packet it sends.
 * Why we change it: those writes were ~10 % of the broker's CPU in bench:broker's QoS 0 load.
 * Upstream: mqttjs/mqtt-packet#48 and mqttjs/mqtt-packet#6 (write cost of the streaming
 * writer); no fix planned. Record: docs/internals/publish-writer.md.
 */
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import { guardOf } from '../server/connection-guard.js';
import { encodeAcknowledgement, encodePublish, type PublishFields } from '../wire/publish-writer.js';

const INSTALLED = Symbol('tlsfleet.publishWriter');
type WriteToStream = ((packet: PublishFields, stream: Writable, opts?: unknown) => boolean) & { cacheNumbers?: boolean; [INSTALLED]?: true };

let encodedHere = 0;
let acknowledgementsEncodedHere = 0;

/**
 * Routes Aedes' PUBLISH writes to guarded connections through encodePublish, and their
 * acknowledgements through encodeAcknowledgement: one buffer and one write per packet,
 * where mqtt-packet makes four to six writes for a PUBLISH (header byte, length, topic
 * length, topic string, identifier, payload) and three for a PUBACK, plus a cork and a
 * nextTick to uncork. Measured in bench:broker's QoS 0 load, A/B over 6 alternating rounds:
 * +17 % messages per broker CPU-second; mqtt-packet's publish writer had been ~10 % of the
 * broker's CPU there. Aedes 1.x calls `mqtt.writeToStream` on mqtt-packet's module object
 * at each write, so that function is replaced on the copy Aedes loads; every other
 * packet, every stream that is not a guarded connection and every call with options still
 * goes to mqtt-packet. Idempotent; call once at start-up.
 */
export function installPublishWriter(): void {
  const mqttPacket = createRequire(import.meta.resolve('aedes'))('mqtt-packet') as { writeToStream: WriteToStream };
  if (mqttPacket.writeToStream[INSTALLED]) return;
  const viaMqttPacket = mqttPacket.writeToStream;
  const writeToStream = (packet: PublishFields, stream: Writable, opts?: unknown): boolean => {
    if (opts === undefined && guardOf(stream) !== undefined) {
      if (packet.cmd === 'publish') {
        const frame = encodePublish(packet);
        if (frame !== undefined) {
          encodedHere++;
          return stream.write(frame);
        }
      } else {
        const frame = encodeAcknowledgement(packet);
        if (frame !== undefined) {
          acknowledgementsEncodedHere++;
          return stream.write(frame);
        }
      }
    }
    return viaMqttPacket(packet, stream, opts);
  };
  // mqtt-packet's number-cache switch is an accessor on writeToStream (mqtt.js sets it).
  Object.defineProperty(writeToStream, 'cacheNumbers', { get: () => viaMqttPacket.cacheNumbers, set: (on: boolean) => (viaMqttPacket.cacheNumbers = on) });
  mqttPacket.writeToStream = Object.assign(writeToStream, { [INSTALLED]: true as const });
}

/** PUBLISH packets encoded by encodePublish in this process, for tests that Aedes still writes through it. */
export function publishesEncodedHere(): number {
  return encodedHere;
}

/** Acknowledgements encoded by encodeAcknowledgement in this process, likewise. */
export function acknowledgementsEncoded(): number {
  return acknowledgementsEncodedHere;
}
