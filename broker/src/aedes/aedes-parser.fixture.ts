import { createRequire } from 'node:module';
import type { Packet } from 'mqtt-packet';

/** The parts of an mqtt-packet parser the publish reader's tests drive. Test-only. */
export interface AedesParser {
  parse(buf: Buffer): number;
  on(event: 'packet', listener: (p: Packet) => void): void;
  on(event: 'error', listener: (e: Error) => void): void;
  client?: { conn: unknown };
}

/** The copy of mqtt-packet Aedes loads: the one installPublishReader changes. */
export const aedesMqttPacket = createRequire(import.meta.resolve('aedes'))('mqtt-packet') as { parser: () => AedesParser };
