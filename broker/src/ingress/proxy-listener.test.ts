import { once } from 'node:events';
import { connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createProxyListener, type ProxyRefusal } from './proxy-listener.js';
import type { ProxyEndpoint } from './proxy-header.js';
import { TrustedProxies } from './trusted-proxies.js';

interface Outcome {
  accepted?: { client: ProxyEndpoint; rest: Promise<string> };
  refused?: { reason: ProxyRefusal; detail: string };
}

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A listener on a free loopback port; `next()` resolves with how the next connection ended. */
async function listen(trusted: string[], headerTimeoutMs = 10_000) {
  const outcomes: ((o: Outcome) => void)[] = [];
  const settle = (o: Outcome) => outcomes.shift()?.(o);
  const server = createProxyListener({
    trusted: new TrustedProxies(trusted),
    headerTimeoutMs,
    onAccepted: (socket: Socket, client) => {
      // What the TLS server would read: everything past the header, until the peer ends.
      let text = '';
      socket.setEncoding('latin1').on('data', (d: string) => (text += d));
      socket.resume();
      settle({ accepted: { client, rest: once(socket, 'end').then(() => text) } });
    },
    onRefused: (reason, _peer, detail) => settle({ refused: { reason, detail } }),
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { port, next: () => new Promise<Outcome>((resolve) => outcomes.push(resolve)) };
}

async function client(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', noDelay: true });
  await once(socket, 'connect');
  return socket;
}

describe('the PROXY listener', () => {
  it('hands over a trusted connection with the header\'s client and every byte past the header, even when they share a write', async () => {
    const l = await listen(['127.0.0.1/32']);
    const outcome = l.next();
    const s = await client(l.port);
    s.end('PROXY TCP4 203.0.113.7 127.0.0.1 40000 8883\r\nhello');
    const { accepted } = await outcome;
    expect(accepted?.client).toEqual({ address: '203.0.113.7', port: 40000 });
    expect(await accepted?.rest).toBe('hello');
  });

  it('reassembles a header written one byte at a time', async () => {
    const l = await listen(['127.0.0.0/8']);
    const outcome = l.next();
    const s = await client(l.port);
    for (const b of Buffer.from('PROXY TCP6 2001:db8::7 ::1 1 2\r\n')) s.write(Buffer.from([b]));
    s.end('rest');
    const { accepted } = await outcome;
    expect(accepted?.client).toEqual({ address: '2001:db8::7', port: 1 });
    expect(await accepted?.rest).toBe('rest');
  });

  it('uses the connection\'s own peer for a v1 UNKNOWN header', async () => {
    const l = await listen(['127.0.0.1']);
    const outcome = l.next();
    const s = await client(l.port);
    s.end('PROXY UNKNOWN\r\n');
    const { accepted } = await outcome;
    expect(accepted?.client).toEqual({ address: '127.0.0.1', port: s.localPort });
  });

  it.each([
    ['untrusted_proxy', ['10.0.0.0/8'], 'PROXY TCP4 203.0.113.7 127.0.0.1 1 2\r\n'],
    ['no_header', ['127.0.0.1/32'], '\x16\x03\x01\x00\x05hello'],
    ['malformed', ['127.0.0.1/32'], 'PROXY TCP4 203.0.113.700 127.0.0.1 1 2\r\n'],
  ] as const)('closes the connection: %s', async (reason, trusted, bytes) => {
    const l = await listen([...trusted]);
    const outcome = l.next();
    const s = await client(l.port);
    s.on('error', () => undefined);
    const closed = once(s, 'close');
    let received = 0;
    s.on('data', (d: Buffer) => (received += d.length));
    s.write(Buffer.from(bytes, 'latin1'));
    expect((await outcome).refused?.reason).toBe(reason);
    await closed;
    expect(received).toBe(0);
  });

  it('closes a connection whose header does not complete in time', async () => {
    const l = await listen(['127.0.0.1/32'], 200);
    const outcome = l.next();
    const s = await client(l.port);
    const closed = once(s, 'close');
    s.write('PROXY TCP4 203.0.113.7');
    expect((await outcome).refused?.reason).toBe('timeout');
    await closed;
  });
});

describe('trusted proxies', () => {
  it.each([
    [['10.0.0.0/8'], '10.200.3.4', true],
    [['10.0.0.0/8'], '11.0.0.1', false],
    [['10.0.0.0/8'], '::ffff:10.1.2.3', true],
    [['192.0.2.10'], '192.0.2.10', true],
    [['192.0.2.10'], '192.0.2.11', false],
    [['fd00::/8'], 'fd12::1', true],
    [['fd00::/8'], 'fe80::1', false],
    [[], '127.0.0.1', false],
  ] as const)('%j has %s: %s', (cidrs, address, expected) => {
    expect(new TrustedProxies([...cidrs]).has(address)).toBe(expected);
  });

  it.each(['10.0.0.0/33', 'fd00::/129', 'example.com/8', '10.0.0/8', '10.0.0.0/', ''])('refuses %j at start-up', (cidr) => {
    expect(() => new TrustedProxies([cidr])).toThrow(/--trusted-proxy/);
  });
});
