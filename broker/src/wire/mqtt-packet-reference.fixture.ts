import { generate, parser as mqttParser, type Packet } from 'mqtt-packet';

// mqtt-packet's own reading and writing, the reference the broker's wire code is compared with. Test-only.

/** What mqtt-packet's own parser emits for `bytes`, read in one piece, and the first error. */
export function referenceRead(bytes: Buffer): { packets: Packet[]; error: string | undefined } {
  const p = mqttParser();
  const packets: Packet[] = [];
  let error: string | undefined;
  p.on('packet', (packet: Packet) => packets.push(packet));
  p.on('error', (e: Error) => (error ??= e.message));
  p.parse(bytes);
  return { packets, error };
}

/** Packets as plain data, so that mqtt-packet's Packet class and our object literals compare equal. */
export const plain = (packets: Packet[]) => packets.map((p) => JSON.parse(JSON.stringify({ ...p, payload: Buffer.isBuffer((p as { payload?: unknown }).payload) ? (p as { payload: Buffer }).payload.toString('base64') : (p as { payload?: unknown }).payload })) as unknown);

export const connect4 = generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'd1', keepalive: 30 });
export const publish = (fields: Partial<Packet> & { topic: string; payload: Buffer | string }) => generate({ cmd: 'publish', qos: 0, retain: false, dup: false, ...fields } as Packet);
/** `remaining` bytes of Remaining Length in a QoS 0 PUBLISH to topic 't'. */
export const withRemaining = (remaining: number) => publish({ topic: 't', payload: Buffer.alloc(remaining - 3, 0x61) });
