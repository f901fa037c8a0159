import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { Packet } from 'mqtt-packet';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareFixture, type BenchFixture } from './bench/bench-fixture.js';
import { closed, encodePublish, openMqtt, PacketWaiter, subscribe } from './bench/mqtt-client.js';
import { startBroker, type RunningBroker } from './broker-server.js';

// The broker in this process, for what the suites in test/ do not reach from outside: its
// clock, and packets written together so that they arrive in one read. On a data dir made
// by the CLI's init, with identities minted by provisioning, as bench:broker makes it.

const publishDenials = async (broker: RunningBroker) =>
  (await broker.metrics.aclDenials.get()).values.find((v) => v.labels.action === 'publish')?.value ?? 0;

describe('the broker in this process', () => {
  let work: string;
  let fixture: BenchFixture;
  let broker: RunningBroker;
  /** The broker's clock, which a test may move past a certificate's notAfter. */
  let aheadMs = 0;
  const sockets: TLSSocket[] = [];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tlsfleet-broker-in-process-'));
    fixture = prepareFixture(work, 2, 'ingest');
    broker = await startBroker({ dataDir: fixture.dataDir, host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), now: () => Date.now() + aheadMs });
  }, 120_000);
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await broker?.close(1000);
    rmSync(work, { recursive: true, force: true });
  });

  /** A connected client of the fixture's identity; what it receives goes to `seen` or a waiter. */
  async function client(cred: BenchFixture['service']) {
    const waiter = new PacketWaiter();
    const seen: Packet[] = [];
    const socket = await openMqtt(broker.port, cred, { onPacket: (p) => waiter.offer(p) || seen.push(p) });
    sockets.push(socket);
    return { socket, waiter, seen };
  }
  const publish = (socket: TLSSocket, topic: string, payload: string) => socket.write(encodePublish(Buffer.from(topic), 0, 0, Buffer.from(payload)));
  /** Once the broker has answered a PINGREQ, whatever it wrote to `c` before has arrived. */
  const settled = async (c: { socket: TLSSocket; waiter: PacketWaiter }) => {
    c.socket.write(Buffer.of(0xc0, 0x00));
    await c.waiter.next('pingresp', 5000);
  };
  /** A QoS 0 PUBLISH with RETAIN: encodePublish's frame with the flag set (§3.3.1.3). */
  const encodeRetained = (topic: string, payload: string) => {
    const frame = encodePublish(Buffer.from(topic), 0, 0, Buffer.from(payload));
    frame[0] = (frame[0] as number) | 0x01;
    return frame;
  };

  it("delivers a device's retained state and the telemetry read right after it to a live service subscriber", async () => {
    const d0 = fixture.devices[0] as BenchFixture['service'];
    const svc = await client(fixture.service);
    expect(await subscribe(svc.socket, svc.waiter, `devices/${d0.name}/#`, 0)).toBe(0);
    const device = await client(d0);
    // One write: Aedes emits the retained one after storing it, so the second goes first.
    device.socket.write(Buffer.concat([encodeRetained(`devices/${d0.name}/state`, 'on'), encodePublish(Buffer.from(`devices/${d0.name}/t`), 0, 0, Buffer.from('reading'))]));
    const first = await svc.waiter.next('publish', 5000);
    await settled(svc);
    const payloads = [first, ...svc.seen.filter((p) => p.cmd === 'publish')].map((p) => (p as { payload: Buffer }).payload.toString());
    expect(payloads.sort()).toEqual(['on', 'reading']);
  });

  it("refuses a device's publish to its own topic once its certificate's notAfter has passed, before the session is closed", async () => {
    const d1 = fixture.devices[1] as BenchFixture['service'];
    const svc = await client(fixture.service);
    expect(await subscribe(svc.socket, svc.waiter, `devices/${d1.name}/#`, 0)).toBe(0);
    const device = await client(d1);
    const denials = await publishDenials(broker);
    // Ten years on: the session's expiry timer (real time) has not fired, the clock has passed.
    aheadMs = 10 * 365 * 24 * 3600 * 1000;
    publish(device.socket, `devices/${d1.name}/t`, 'too-late');
    await closed(device.socket, 5000);
    aheadMs = 0;
    expect(device.socket.destroyed).toBe(true);
    expect(await publishDenials(broker)).toBe(denials + 1);
    await settled(svc);
    expect(svc.seen.filter((p) => p.cmd === 'publish')).toEqual([]);
  });
});
