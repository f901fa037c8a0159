import type { Server, TlsOptions } from 'node:tls';
import type { DataDir } from '@tlsfleet/common';

/** The broker's TLS settings for the benchmark's reference servers: its certificate, the trust bundle, a client certificate required, TLS 1.2+. */
export function referenceTlsOptions(dataDir: DataDir): TlsOptions {
  return {
    key: dataDir.readSecret('brokerKey'),
    cert: dataDir.read('brokerCert'),
    ca: dataDir.read('caBundle'),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  };
}

/** Listens on 127.0.0.1 (any port) and prints "listening PORT" for the benchmark; SIGTERM exits. */
export function listenForBench(server: Server): void {
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
  });
  process.once('SIGTERM', () => process.exit(0));
}
