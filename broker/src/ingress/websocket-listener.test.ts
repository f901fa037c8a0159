import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { refuseUpgrade } from './websocket-listener.js';

describe('refuseUpgrade', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanup.splice(0)) c();
  });

  it('answers the status and destroys the socket, even when the client never closes its side', async () => {
    // Both ends allow half-open sockets: a bare end() would leave the broker's side open.
    const server = createServer({ allowHalfOpen: true });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanup.push(() => server.close());
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
    cleanup.push(() => client.destroy());
    client.on('error', () => undefined);
    const [socket] = await accepted;
    let answer = '';
    client.setEncoding('utf8').on('data', (d: string) => (answer += d));
    const ended = once(client, 'end');
    // With a bare end() the broker's side waits for the client's FIN forever: no 'close'.
    const serverClosed = once(socket, 'close').then(() => 'closed');
    refuseUpgrade(socket, 400);
    await ended;
    expect(answer).toBe('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    const deadline = new Promise((resolve) => setTimeout(resolve, 5000, 'still open').unref());
    expect(await Promise.race([serverClosed, deadline])).toBe('closed');
    expect(client.destroyed).toBe(false);
  });
});
