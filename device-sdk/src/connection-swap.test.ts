import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { generate, parser, type Packet } from 'mqtt-packet';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Backoff } from './backoff.js';
import { Connection, type ConnectionHooks } from './connection.js';
import type { DeviceIdentity } from './credential-store.js';
import type { DeviceError } from './errors.js';
import { OutboundQueue } from './outbound-queue.js';
import { testIdentity } from './test-identity.fixture.js';

// Connection.swap() against a small MQTT 3.1.1 server that does what the broker does at a
// session takeover: a second CONNECT with the same client id closes the first socket, then
// gets its CONNACK. A client certificate with CN "refused" gets CONNACK 5.

interface Session {
  n: number;
  socket: TLSSocket;
  cn: string;
  /** Publishes received on this socket, by payload. */
  received: string[];
  holdAcks: boolean;
}

class FakeBroker {
  readonly sessions: Session[] = [];
  private readonly byClient = new Map<string, Session>();
  private readonly waiters: (() => void)[] = [];
  server!: Server;
  port = 0;

  constructor(private readonly key: string, private readonly cert: string) {}

  async start(): Promise<void> {
    this.server = createServer({ key: this.key, cert: this.cert, requestCert: true, rejectUnauthorized: false }, (socket) => this.accept(socket));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Resolves once `check()` holds, re-checked after each packet. */
  until(check: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const probe = () => (check() ? resolve() : this.waiters.push(probe));
      probe();
    });
  }

  async stop(): Promise<void> {
    for (const s of this.sessions) s.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: TLSSocket): void {
    const p = parser({ protocolVersion: 4 });
    let session: Session | undefined;
    const send = (packet: object) => socket.write(generate(packet as Packet));
    socket.on('data', (d) => p.parse(d));
    socket.on('error', () => {});
    p.on('packet', (packet: Packet) => {
      if (packet.cmd === 'connect') {
        const cn = String((socket.getPeerCertificate().subject as { CN?: string } | undefined)?.CN);
        if (cn === 'refused') {
          send({ cmd: 'connack', returnCode: 5, sessionPresent: false });
          socket.end();
        } else {
          session = { n: this.sessions.length + 1, socket, cn, received: [], holdAcks: false };
          this.sessions.push(session);
          this.byClient.get(packet.clientId)?.socket.destroy(); // takeover, before CONNACK
          this.byClient.set(packet.clientId, session);
          send({ cmd: 'connack', returnCode: 0, sessionPresent: true });
        }
      } else if (packet.cmd === 'publish' && session) {
        session.received.push(packet.payload.toString());
        if (packet.qos === 1 && !session.holdAcks) send({ cmd: 'puback', messageId: packet.messageId });
      } else if (packet.cmd === 'subscribe') {
        send({ cmd: 'suback', messageId: packet.messageId, granted: packet.subscriptions.map(() => 1) });
      } else if (packet.cmd === 'pingreq') {
        send({ cmd: 'pingresp' });
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }
}

let serverKey: string;
let serverCert: string;
beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'tlsfleet-swap-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'], { stdio: 'ignore' });
    serverKey = readFileSync(join(dir, 'k.pem'), 'utf8');
    serverCert = readFileSync(join(dir, 'c.pem'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Re-checks `check` on each turn of the event loop's timers (5 ms), for at most 10 s. */
function waitFor(check: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 10_000;
    const tick = setInterval(() => {
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error('condition not met within 10 s'));
      else return;
      clearInterval(tick);
    }, 5);
  });
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function identity(cn: string, serial: string): Promise<DeviceIdentity> {
  return { ...(await testIdentity(cn)), serial, caBundlePem: serverCert };
}

/** A broker, a connection on it presenting `use.identity`, and everything the hooks saw. */
async function setup(overrides: (events: string[], current: () => Connection) => Partial<ConnectionHooks> = () => ({})) {
  const broker = new FakeBroker(serverKey, serverCert);
  await broker.start();
  const use = { identity: await identity('old', '01') };
  const events: string[] = [];
  const queue = new OutboundQueue();
  const connection: Connection = new Connection({
    brokerUrl: `mqtts://127.0.0.1:${broker.port}`,
    clientId: 'dev-1',
    backoff: new Backoff({ initialDelayMs: 50, maxDelayMs: 200 }),
    queue,
    hooks: {
      credentials: () => use.identity,
      connected: (id, _sp, _ms, swap) => void events.push(`connected ${id.serial}${swap ? ' swap' : ''}`),
      disconnected: (reason) => void events.push(`disconnected ${reason}`),
      connectFailed: async (err: DeviceError, id) => {
        events.push(`refused ${id.serial} ${err.code}`);
        return 'retry-now';
      },
      message: () => {},
      report: () => {},
      ...overrides(events, () => connection),
    },
  });
  cleanups.push(async () => {
    await connection.stop();
    queue.close(new Error('closed'));
    await broker.stop();
  });
  const until = (want: string) => waitFor(() => events.includes(want));
  connection.start();
  await until('connected 01');
  const publish = (payload: string) => {
    const { message, acked } = queue.add('devices/dev-1/t', Buffer.from(payload), false);
    connection.send(message);
    return acked;
  };
  return { broker, connection, use, events, until, publish };
}

describe('Connection.swap(): make-before-break', () => {
  it('moves the session to the new certificate: the old link closes at the takeover without a disconnection, and what it left unacknowledged is resent on the new one', async () => {
    const { broker, connection, use, events, until, publish } = await setup();
    broker.sessions[0]!.holdAcks = true;
    const acked = publish('m1');
    await broker.until(() => broker.sessions[0]!.received.includes('m1'));
    use.identity = await identity('new', '02');
    connection.swap();
    await until('connected 02 swap');
    await acked;
    expect(broker.sessions.map((s) => s.cn)).toEqual(['old', 'new']);
    expect(broker.sessions[1]!.received).toEqual(['m1']);
    await publish('m2');
    expect(broker.sessions[1]!.received).toEqual(['m1', 'm2']);
    expect(events).toEqual(['connected 01', 'connected 02 swap']);
    expect(connection.current?.serial).toBe('02');
  });

  it('a refused new certificate leaves the old link up and in use, with no event but the refusal', async () => {
    const { broker, connection, use, events, publish } = await setup();
    const old = use.identity;
    use.identity = await identity('refused', '03');
    const refused = waitFor(() => events.includes('refused 03 unauthorized'));
    connection.swap();
    await refused;
    use.identity = old;
    await publish('after');
    expect(broker.sessions).toHaveLength(1);
    expect(broker.sessions[0]!.received).toEqual(['after']);
    expect(broker.sessions[0]!.socket.destroyed).toBe(false);
    expect(events).toEqual(['connected 01', 'refused 03 unauthorized']);
    expect(connection.connected).toBe(true);
  });

  it('a new link that closes while the swap completes is a lost session: disconnected, then a reconnect', async () => {
    let armed = false;
    let broker!: FakeBroker;
    const s = await setup((events, connection) => ({
      connected: async (id, _sp, _ms, swap) => {
        events.push(`connected ${id.serial}${swap ? ' swap' : ''}`);
        if (!swap || !armed) return;
        armed = false;
        // The broker drops the new link; the hook returns only once the client has seen it close.
        broker.sessions[1]!.socket.destroy();
        await waitFor(() => connection().current === undefined);
      },
    }));
    broker = s.broker;
    const { connection, use, events, until } = s;
    armed = true;
    use.identity = await identity('new', '02');
    connection.swap();
    await until('disconnected connection lost');
    await broker.until(() => broker.sessions.length === 3);
    await until('connected 02');
    expect(events).toEqual(['connected 01', 'connected 02 swap', 'disconnected connection lost', 'connected 02']);
  });
});
