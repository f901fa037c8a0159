import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { Packet } from 'mqtt-packet';
import { pino } from 'pino';
import type { Counter } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pemX509Certificates } from '@tlsfleet/common';
import { prepareFixture, type BenchFixture } from '../../../bench/src/broker/bench-fixture.js';
import { closed, encodePublish, openMqtt, PacketWaiter, settled, subscribe } from '../../../bench/src/broker/mqtt-client.js';
import { startBroker, type RunningBroker } from './start-broker.js';

// The broker in this process, for what the suites in test/ do not reach from outside: its
// clock (and, through it, a trust-bundle reload timed inside the connect steps), and packets
// written together so that they arrive in one read. On a data dir made
// by the CLI's init, with identities minted by provisioning, as bench:broker makes it.

/** A counter's value for one label's value; 0 before its first count. */
const counted = async <T extends string>(counter: Counter<T>, label: T, value: string) => (await counter.get()).values.find((v) => v.labels[label] === value)?.value ?? 0;
const publishDenials = (broker: RunningBroker) => counted(broker.metrics.aclDenials, 'action', 'publish');
const untrustedIssuerCloses = (broker: RunningBroker) => counted(broker.metrics.revocationDisconnects, 'reason', 'issuer_not_trusted');

describe('the broker in this process', () => {
  let work: string;
  let fixture: BenchFixture;
  let broker: RunningBroker;
  /** The broker's clock, which a test may move past a certificate's notAfter. */
  let aheadMs = 0;
  /** Run once by the broker's clock when the connect steps read it (their expiry check). */
  let atConnectStepClock: (() => void) | undefined;
  const clock = () => {
    if (atConnectStepClock && new Error().stack?.includes('connect-steps')) {
      const act = atConnectStepClock;
      atConnectStepClock = undefined;
      act();
    }
    return Date.now() + aheadMs;
  };
  const sockets: TLSSocket[] = [];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tlsfleet-broker-in-process-'));
    fixture = prepareFixture(work, 3, 'ingest');
    broker = await startBroker({ dataDir: fixture.dataDir, host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), now: clock });
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

  it("delivers a device's retained state and the telemetry read right after it to a live service subscriber", async () => {
    const d0 = fixture.devices[0] as BenchFixture['service'];
    const svc = await client(fixture.service);
    expect(await subscribe(svc.socket, svc.waiter, `devices/${d0.name}/#`, 0)).toBe(0);
    const device = await client(d0);
    // One write: Aedes emits the retained one after storing it, so the second goes first.
    device.socket.write(Buffer.concat([encodePublish(Buffer.from(`devices/${d0.name}/state`), 0, 0, Buffer.from('on'), true), encodePublish(Buffer.from(`devices/${d0.name}/t`), 0, 0, Buffer.from('reading'))]));
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

  it('closes a session whose issuer left the trust bundle between its connect steps and clientReady', async () => {
    const d2 = fixture.devices[2] as BenchFixture['service'];
    const bundleFile = join(fixture.dataDir, 'ca-bundle.pem');
    const bundle = readFileSync(bundleFile, 'utf8');
    // The fixture's bundle is the root and the intermediate that issued every leaf: the root alone retires the intermediate.
    const cas = pemX509Certificates(bundle);
    const roots = cas.filter((c) => c.issuer === c.subject);
    expect(roots.length).toBe(1);
    expect(cas.length).toBeGreaterThan(roots.length);
    const rootOnly = roots.map((c) => c.toString()).join('');
    const before = await untrustedIssuerCloses(broker);
    // The issuer check has passed by the time the connect steps read the clock for the expiry check.
    // The file is put back at once: the broker's own watcher would otherwise reload it again
    // later and close the session through the reload's sweep, not through clientReady.
    atConnectStepClock = () => {
      writeFileSync(bundleFile, rootOnly);
      broker.reload();
      writeFileSync(bundleFile, bundle);
    };
    try {
      const outcome = await openMqtt(broker.port, d2).then(
        async (socket) => {
          sockets.push(socket);
          await closed(socket, 5000);
          return socket.destroyed ? 'closed after CONNACK' : 'still open';
        },
        (err: Error) => err.message,
      );
      expect(outcome).toMatch(/^closed (before|after) CONNACK$/);
      expect(atConnectStepClock).toBeUndefined();
      // The reload also closes this file's earlier live sessions: their issuer left too.
      expect(await untrustedIssuerCloses(broker)).toBeGreaterThan(before);
    } finally {
      atConnectStepClock = undefined;
      writeFileSync(bundleFile, bundle);
      broker.reload();
    }
  });
});
