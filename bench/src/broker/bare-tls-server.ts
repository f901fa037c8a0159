import { createServer } from 'node:tls';
import { DataDir } from '@tlsfleet/common';
import { listenForBench, referenceTlsOptions } from './reference-tls.js';

// Reference for memory per connection: a bare Node TLS server with the broker's TLS
// settings and certificates (client certificate required, TLS 1.2+) that answers the
// first bytes it reads (the client's CONNECT) with CONNACK accepted and then just holds
// the connection. Whatever the broker adds per connection is on top of this.
// Usage: node bare-tls-server.js DATA_DIR   → prints "listening PORT"; SIGTERM stops it.
const CONNACK_ACCEPTED = Buffer.of(0x20, 0x02, 0x00, 0x00);

const server = createServer(referenceTlsOptions(DataDir.open(process.argv[2] as string)));
server.on('secureConnection', (socket) => {
  socket.on('error', () => undefined);
  socket.once('data', () => socket.write(CONNACK_ACCEPTED));
  socket.on('data', () => undefined);
});
listenForBench(server);
