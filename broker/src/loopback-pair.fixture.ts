import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import type { PeerCertificate } from '@tlsfleet/common';

/** A device peer for guards in tests; no certificate behind it. */
export const testPeer: PeerCertificate = { identity: { kind: 'device', name: 'd1', trustDomain: 'x.test' }, serial: '1', notAfterMs: Date.now() + 60_000, spkiDer: Buffer.alloc(0), authorityKeyId: undefined };

export interface LoopbackPair {
  /** The connecting side. */
  readonly client: Socket;
  /** The accepted side, as the broker's listener gets it. */
  readonly socket: Socket;
  close(): void;
}

/** A real TCP connection on 127.0.0.1: both ends, and a close for afterEach. */
export async function loopbackPair(): Promise<LoopbackPair> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  const [socket] = await accepted;
  return {
    client,
    socket,
    close: () => {
      client.destroy();
      socket.destroy();
      server.close();
    },
  };
}
