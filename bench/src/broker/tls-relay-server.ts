import { constants as cryptoConstants } from 'node:crypto';
import { createServer, type TLSSocket } from 'node:tls';
import { DataDir } from '@tlsfleet/common';
import { listenForBench, referenceTlsOptions } from './reference-tls.js';

// Reference for QoS 0 throughput and latency: what Node's TLS alone costs, with the
// broker's TLS settings and no MQTT library. It answers CONNECT, SUBSCRIBE (granting the
// QoS asked) and PINGREQ, and forwards each PUBLISH's bytes unchanged to every subscriber:
// no ACL, no session, no parsing past the fixed header. No MQTT broker on Node can be
// cheaper per message than this, so ours against it is the cost of MQTT (Aedes and our
// checks), and it against mosquitto is the cost of Node. It frames packets itself because
// any MQTT library would add the very work it is there to leave out.
// Usage: node tls-relay-server.js DATA_DIR   → prints "listening PORT"; SIGTERM stops it.

const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const PINGRESP = Buffer.from([0xd0, 0x00]);
const subscribers = new Set<TLSSocket>();

/** Acts on the whole packet buf[start, end) whose fixed header is `headerBytes` long. */
function onPacket(socket: TLSSocket, buf: Buffer, start: number, end: number, headerBytes: number): void {
  const body = start + headerBytes;
  switch ((buf[start] as number) >> 4) {
    case 1: // CONNECT
      socket.write(CONNACK);
      break;
    case 3: // PUBLISH
      for (const s of subscribers) s.write(buf.subarray(start, end));
      break;
    case 8: // SUBSCRIBE: one filter; its requested QoS is the packet's last byte
      subscribers.add(socket);
      socket.write(Buffer.from([0x90, 0x03, buf[body] as number, buf[body + 1] as number, (buf[end - 1] as number) & 0x03]));
      break;
    case 12: // PINGREQ
      socket.write(PINGRESP);
      break;
    case 14: // DISCONNECT
      socket.end();
      break;
  }
}

const server = createServer({ ...referenceTlsOptions(DataDir.open(process.argv[2] as string)), secureOptions: cryptoConstants.SSL_OP_NO_TICKET, noDelay: true });
server.on('secureConnection', (socket: TLSSocket) => {
  let held: Buffer | undefined;
  socket.on('data', (chunk: Buffer) => {
    const buf = held ? Buffer.concat([held, chunk]) : chunk;
    let at = 0;
    for (;;) {
      // MQTT 3.1.1 §2.2.3: up to four bytes of Remaining Length after the type byte.
      let length = 0;
      let i = at + 1;
      for (let multiplier = 1; i < buf.length && i <= at + 4; i++, multiplier *= 128) {
        length += ((buf[i] as number) & 0x7f) * multiplier;
        if (((buf[i] as number) & 0x80) === 0) break;
      }
      if (i >= buf.length || i > at + 4) break;
      const end = i + 1 + length;
      if (end > buf.length) break;
      onPacket(socket, buf, at, end, i + 1 - at);
      at = end;
    }
    held = at < buf.length ? Buffer.from(buf.subarray(at)) : undefined;
  });
  socket.on('close', () => subscribers.delete(socket));
  socket.on('error', () => socket.destroy());
});
listenForBench(server);
