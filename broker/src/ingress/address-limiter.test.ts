import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OpensslPki } from '../revocation/openssl-crl.fixture.js';
import { AddressLimiter, canonicalAddress } from './address-limiter.js';

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
});

/** A loopback listener whose accepted sockets arrive, in order, through `accepted()`. */
async function listener(): Promise<{ port: number; accepted(): Promise<Socket> }> {
  const queue: Socket[] = [];
  const waiters: ((s: Socket) => void)[] = [];
  const server = createServer((s) => {
    s.on('error', () => undefined);
    const w = waiters.shift();
    if (w) w(s);
    else queue.push(s);
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => {
      const s = queue.shift();
      return s ? Promise.resolve(s) : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

/** A real TCP pair on loopback: the broker's side (`server`) and the client's. */
async function pair(l: { port: number; accepted(): Promise<Socket> }): Promise<{ server: Socket; client: Socket }> {
  const client = connect({ port: l.port, host: '127.0.0.1' });
  client.on('error', () => undefined);
  sockets.push(client);
  const server = await l.accepted();
  sockets.push(server);
  return { server, client };
}

/** Resolves at 'close'; not events.once, which rejects on the 'error' some close paths emit first. */
const closeOf = (s: Socket): Promise<void> => new Promise((resolve) => s.once('close', () => resolve()));

/** Every way a connection ends, from either side. */
const CLOSE_WAYS = {
  'the client ends (FIN)': (p: { server: Socket; client: Socket }) => p.client.end(),
  'the client destroys': (p: { server: Socket; client: Socket }) => p.client.destroy(),
  'the client resets (RST)': (p: { server: Socket; client: Socket }) => p.client.resetAndDestroy(),
  'the broker destroys': (p: { server: Socket; client: Socket }) => p.server.destroy(),
  'the broker destroys with an error': (p: { server: Socket; client: Socket }) => p.server.destroy(new Error('cut')),
  'the broker ends': (p: { server: Socket; client: Socket }) => p.server.end(),
} as const;
type CloseWay = keyof typeof CLOSE_WAYS;

describe('canonicalAddress', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['::FFFF:203.0.113.7', '203.0.113.7'],
    ['::ffff:cb00:7107', '203.0.113.7'],
    ['2001:DB8:0:0::7', '2001:db8::7'],
    ['2001:db8::7', '2001:db8::7'],
    ['fe80::1%eth0', 'fe80::1'],
    ['::1', '::1'],
    [undefined, 'unknown'],
  ] as const)('writes %j as %j', (address, expected) => {
    expect(canonicalAddress(address)).toBe(expected);
  });
});

describe('AddressLimiter', () => {
  it.each([0, -1, 1.5, Number.NaN, 2 ** 53])('refuses a limit of %s at start-up, saying which flag', (max) => {
    expect(() => new AddressLimiter(max)).toThrow(/--max-connections-per-address/);
  });

  it('admits up to the limit per address, refuses the next without counting it, and keeps other addresses apart', async () => {
    const l = await listener();
    const limiter = new AddressLimiter(2);
    const [a, b, c, d] = await Promise.all([pair(l), pair(l), pair(l), pair(l)]);
    expect(limiter.admit('203.0.113.7', a!.server)).toBe(true);
    expect(limiter.admit('203.0.113.7', b!.server)).toBe(true);
    expect(limiter.admit('203.0.113.7', c!.server)).toBe(false);
    expect(limiter.admit('203.0.113.8', d!.server)).toBe(true);
    expect(limiter.connections('203.0.113.7')).toBe(2);
    expect(limiter.addresses).toBe(2);
    // The refused one holds nothing: closing it changes no count.
    c!.server.destroy();
    await closeOf(c!.server);
    expect(limiter.connections('203.0.113.7')).toBe(2);
    a!.server.destroy();
    await closeOf(a!.server);
    expect(limiter.connections('203.0.113.7')).toBe(1);
    expect(limiter.admit('203.0.113.7', c!.client)).toBe(true);
  });

  it('counts every spelling of an IPv4 client, mapped or not, against one allowance', async () => {
    const l = await listener();
    const limiter = new AddressLimiter(2);
    const [a, b, c] = await Promise.all([pair(l), pair(l), pair(l)]);
    expect(limiter.admit('::ffff:203.0.113.7', a!.server)).toBe(true);
    expect(limiter.admit('203.0.113.7', b!.server)).toBe(true);
    expect(limiter.admit('::ffff:cb00:7107', c!.server)).toBe(false);
    expect(limiter.addresses).toBe(1);
  });

  it('counts without refusing when no limit is set', async () => {
    const l = await listener();
    const limiter = new AddressLimiter();
    const pairs = await Promise.all(Array.from({ length: 5 }, () => pair(l)));
    for (const p of pairs) expect(limiter.admit('127.0.0.1', p.server)).toBe(true);
    expect(limiter.connections('127.0.0.1')).toBe(5);
  });

  it.each(Object.keys(CLOSE_WAYS) as CloseWay[])('releases the count exactly once when %s', async (way) => {
    const l = await listener();
    const limiter = new AddressLimiter(2);
    const [held, closing] = await Promise.all([pair(l), pair(l)]);
    limiter.admit('198.51.100.1', held!.server);
    limiter.admit('198.51.100.1', closing!.server);
    const closed = closeOf(closing!.server);
    CLOSE_WAYS[way](closing!);
    await closed;
    expect(limiter.connections('198.51.100.1')).toBe(1);
    // A stray second 'close' must not release someone else's slot.
    closing!.server.emit('close');
    expect(limiter.connections('198.51.100.1')).toBe(1);
  });

  it('releases at once a connection that had closed before it was admitted', async () => {
    const l = await listener();
    const limiter = new AddressLimiter(1);
    const { server } = await pair(l);
    server.destroy();
    await closeOf(server);
    expect(limiter.admit('198.51.100.2', server)).toBe(true);
    expect(limiter.connections('198.51.100.2')).toBe(0);
    expect(limiter.addresses).toBe(0);
  });

  it('releases a connection destroyed just before it was admitted, whose close is still to come', async () => {
    const l = await listener();
    const limiter = new AddressLimiter(2);
    const [held, { server }] = await Promise.all([pair(l), pair(l)]);
    limiter.admit('198.51.100.3', held.server);
    const closed = closeOf(server);
    server.destroy();
    limiter.admit('198.51.100.3', server);
    await closed;
    // Released once, by whichever of the check and the listener came first: the other slot stays.
    expect(limiter.connections('198.51.100.3')).toBe(1);
  });

  it('ends at zero after many connections opened, refused and closed in shuffled orders and ways', async () => {
    const l = await listener();
    const limiter = new AddressLimiter(3);
    const ways = Object.values(CLOSE_WAYS);
    const addresses = ['203.0.113.7', '::ffff:203.0.113.7', '203.0.113.8', '2001:db8::1', '2001:DB8::1'];
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 5; round++) {
      const pairs = await Promise.all(Array.from({ length: 12 }, () => pair(l)));
      let admitted = 0;
      for (const p of pairs) if (limiter.admit(addresses[random(addresses.length)], p.server)) admitted++;
      // 3 distinct addresses (two spellings each of two of them), 3 slots each.
      expect(admitted).toBeLessThanOrEqual(9);
      expect(limiter.addresses).toBeLessThanOrEqual(3);
      const order = pairs.map((p) => ({ p, k: random(1000) })).sort((x, y) => x.k - y.k);
      const closed = Promise.all(pairs.map((p) => closeOf(p.server)));
      for (const { p } of order) {
        const way = ways[random(ways.length)]!;
        way(p);
        p.server.end();
      }
      await closed;
      expect(limiter.addresses).toBe(0);
    }
  });

  describe('with the raw socket under a TLS server, as the broker hands it over', () => {
    let pki: OpensslPki;
    beforeAll(() => {
      pki = OpensslPki.create();
    });
    afterAll(() => pki?.remove());

    /** A TLS server fed from a plain listener, like the broker's PROXY listener and address gate. */
    async function tlsBehindGate(limiter: AddressLimiter, handshakeTimeout = 10_000) {
      const tls = createTlsServer({ ...pki.serverCredentials(), handshakeTimeout });
      tls.on('tlsClientError', (_err, s) => s.destroy());
      tls.on('secureConnection', (s) => s.end('hello'));
      const rawClosed: Promise<unknown>[] = [];
      const gate = createServer((raw) => {
        raw.on('error', () => undefined);
        rawClosed.push(closeOf(raw));
        if (limiter.admit(raw.remoteAddress, raw)) tls.emit('connection', raw);
        else raw.destroy();
      });
      servers.push(gate);
      gate.listen(0, '127.0.0.1');
      await once(gate, 'listening');
      return { port: (gate.address() as AddressInfo).port, rawClosed };
    }

    it('releases after a completed session, a failed handshake and a handshake timeout', async () => {
      const limiter = new AddressLimiter(5);
      const { port, rawClosed } = await tlsBehindGate(limiter, 300);
      const ok = tlsConnect({ port, host: '127.0.0.1', ca: pki.pem('root') });
      ok.on('error', () => undefined);
      ok.resume();
      const junk = connect({ port, host: '127.0.0.1' });
      junk.on('error', () => undefined);
      junk.write('GET / HTTP/1.1\r\n\r\n');
      const silent = connect({ port, host: '127.0.0.1' });
      silent.on('error', () => undefined);
      sockets.push(ok, junk, silent);
      await Promise.all([closeOf(ok), closeOf(junk), closeOf(silent)]);
      expect(rawClosed).toHaveLength(3);
      await Promise.all(rawClosed);
      expect(limiter.addresses).toBe(0);
    });
  });
});
