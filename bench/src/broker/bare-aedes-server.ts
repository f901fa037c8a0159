import { constants as cryptoConstants } from 'node:crypto';
import { createServer } from 'node:tls';
import { Aedes } from 'aedes';
import { DataDir } from '@tlsfleet/common';
import { listenForBench, referenceTlsOptions } from './reference-tls.js';

// Reference for throughput and latency: Aedes 1.x with no hooks (it accepts every client
// and every topic) behind a Node TLS server with the broker's TLS settings (client
// certificate required, TLS 1.2+, no session tickets, no Nagle). What Aedes on Node costs
// before any of our checks, connection guard or write path; ours is measured against it.
// Usage: node bare-aedes-server.js DATA_DIR   → prints "listening PORT"; SIGTERM stops it.
const aedes = await Aedes.createBroker();
const server = createServer({ ...referenceTlsOptions(DataDir.open(process.argv[2] as string)), secureOptions: cryptoConstants.SSL_OP_NO_TICKET, noDelay: true });
server.on('secureConnection', (socket) => aedes.handle(socket));
listenForBench(server);
