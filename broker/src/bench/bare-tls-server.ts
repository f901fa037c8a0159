import { createServer } from 'node:tls';
import { DataDir } from '@tlsfleet/common';

// Reference for memory per connection: a bare Node TLS server with the broker's TLS
// settings and certificates (client certificate required, TLS 1.2+) that answers the
// first bytes it reads (the client's CONNECT) with CONNACK accepted and then just holds
// the connection. Whatever the broker adds per connection is on top of this.
// Usage: node bare-tls-server.js DATA_DIR   → prints "listening PORT"; SIGTERM stops it.
const CONNACK_ACCEPTED = Buffer.of(0x20, 0x02, 0x00, 0x00);

const dataDir = DataDir.open(process.argv[2] as string);
const server = createServer({
  key: dataDir.readSecret('brokerKey'),
  cert: dataDir.read('brokerCert'),
  ca: dataDir.read('caBundle'),
  requestCert: true,
  rejectUnauthorized: true,
  minVersion: 'TLSv1.2',
});
server.on('tlsClientError', (_err, socket) => socket.destroy());
server.on('secureConnection', (socket) => {
  socket.on('error', () => undefined);
  socket.once('data', () => socket.write(CONNACK_ACCEPTED));
  socket.on('data', () => undefined);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.once('SIGTERM', () => process.exit(0));
