import { cpus } from 'node:os';
import type { TLSSocket } from 'node:tls';
import type { Packet } from 'mqtt-packet';
import type { BenchServer } from './bench-servers.js';
import { sleep } from './bench-servers.js';
import { pool } from '../bounded-pool.js';
import { closed, disconnect, encodePuback, encodePublish, openMqtt, PacketWaiter, subscribe, type Credential } from './mqtt-client.js';
import { machineStealSeconds, processCpuSeconds } from '@tlsfleet/common';

// The loads the broker benchmark puts on a server, each bounded in count and in time, each
// reading the server's CPU seconds (every thread, /proc) around its measured part only.
// The latency load is in latency-load.ts, on the same publishers and subscriber (openFlow).

export interface ConnectBounds {
  /** Most connections in the measured part. */
  readonly max: number;
  /** Most wall time of the measured part, ms. */
  readonly maxMs: number;
  /** Clients connecting at once. */
  readonly concurrency: number;
  /** Connections before the measured part (JIT, TLS contexts); default 50. */
  readonly warmup?: number;
}

/** What the machine was doing during a measured part, besides the load. */
export interface RoundConditions {
  /**
   * The share of the machine's CPU time the hypervisor gave to other guests meanwhile
   * (steal): a round with much of it measured the host as much as the broker.
   */
  readonly stealShare: number;
}

export interface ConnectResult extends RoundConditions {
  readonly ok: number;
  readonly failed: number;
  readonly firstError: string | undefined;
  readonly ms: number;
  readonly perSecond: number;
  readonly cpuSeconds: number;
  readonly perCpuSecond: number;
}

/**
 * mTLS CONNECT → CONNACK with a new connection (full handshake) each, then DISCONNECT and
 * close. Identities are used in turn, so with `max` ≤ creds.length no clientId repeats.
 */
export async function benchConnects(srv: BenchServer, creds: readonly Credential[], b: ConnectBounds): Promise<ConnectResult> {
  let firstError: string | undefined;
  let n = 0;
  const op = async (): Promise<boolean> => {
    const cred = creds[n++ % creds.length] as Credential;
    try {
      disconnect(await openMqtt(srv.port, cred));
      return true;
    } catch (err) {
      firstError ??= (err as Error).message;
      return false;
    }
  };
  const warmup = b.warmup ?? 50;
  await pool(b.concurrency, warmup, 10_000, op);
  await sleep(200);
  const cpuBefore = processCpuSeconds(srv.pid);
  const stealBefore = machineStealSeconds();
  const run = await pool(b.concurrency, b.max, b.maxMs, op);
  const cpuSeconds = processCpuSeconds(srv.pid) - cpuBefore;
  return { ...run, firstError, perSecond: (run.ok / run.ms) * 1000, cpuSeconds, perCpuSecond: run.ok / cpuSeconds, stealShare: stealShareSince(stealBefore, run.ms) };
}

export interface IdleConnections {
  readonly sockets: readonly TLSSocket[];
  readonly failed: number;
  readonly firstError: string | undefined;
  readonly ms: number;
}

/** Opens up to `count` connections that stay idle after CONNACK (keep alive 60 s), bounded by `maxMs`. */
export async function openIdle(srv: BenchServer, creds: readonly Credential[], count: number, maxMs: number, concurrency: number): Promise<IdleConnections> {
  const sockets: TLSSocket[] = [];
  let firstError: string | undefined;
  let n = 0;
  const run = await pool(concurrency, count, maxMs, async () => {
    const cred = creds[n++ % creds.length] as Credential;
    try {
      sockets.push(await openMqtt(srv.port, cred, { keepaliveS: 60 }));
      return true;
    } catch (err) {
      firstError ??= (err as Error).message;
      return false;
    }
  });
  return { sockets, failed: run.failed, firstError, ms: run.ms };
}

export interface FlowOptions {
  readonly qos: 0 | 1;
  /** Most messages delivered to the subscriber in the measured part. */
  readonly maxMessages: number;
  /** Most wall time of the measured part, ms. */
  readonly maxMs: number;
  /** Unmeasured time at full load before the measured part, ms. */
  readonly warmupMs: number;
  /**
   * Most messages per publisher sent and not yet delivered (and, QoS 1, acknowledged):
   * closed-loop, so no queue grows without bound and nothing is dropped by a queue limit
   * (mosquitto's max_queued_messages is 1,000 per client by default).
   */
  readonly window: number;
}

export interface FlowResult extends RoundConditions {
  readonly delivered: number;
  readonly ms: number;
  readonly perSecond: number;
  readonly cpuSeconds: number;
  readonly perCpuSecond: number;
  /** Messages a publisher sent that the subscriber never saw (sequence gaps never filled). */
  readonly lost: number;
  /** Messages that arrived after a later one of the same publisher (gaps filled late). */
  readonly reordered: number;
  /** Messages that arrived twice. */
  readonly duplicated: number;
  /** Set when delivery stopped for 2 s before the bounds were reached. */
  readonly stalled: boolean;
}

export const PAYLOAD_BYTES = 100;
/** Payload layout: float64 LE send time (performance.now, ms), uint16 LE publisher, uint32 LE sequence, padding. */
export const AT_SENT = 0;
export const AT_PUBLISHER = 8;
export const AT_SEQUENCE = 10;

/**
 * Throughput: publishers each publish to devices/<id>/t as fast as a per-publisher window
 * allows; one service subscribes devices/+/# (with the same QoS) and counts deliveries.
 */
export async function benchFlow(srv: BenchServer, pubs: readonly Credential[], sub: Credential, o: FlowOptions): Promise<FlowResult> {
  const count = pubs.length;
  const sent = new Array<number>(count).fill(0);
  const received = new Array<number>(count).fill(0);
  const acked = new Array<number>(count).fill(0);
  let delivered = 0;
  /** By publisher, the sequence numbers skipped so far and not yet seen. */
  const missing = Array.from({ length: count }, () => new Set<number>());
  let reordered = 0;
  let duplicated = 0;
  let stopped = false;
  const touched = new Set<number>();
  const payload = Buffer.alloc(PAYLOAD_BYTES);
  const topics = pubs.map((c) => Buffer.from(`devices/${c.name}/t`));
  const completed = (p: number) => (o.qos ? Math.min(received[p] as number, acked[p] as number) : (received[p] as number));

  const pubSockets: TLSSocket[] = [];
  const pump = (p: number) => {
    const socket = pubSockets[p];
    if (stopped || !socket) return;
    const room = o.window - ((sent[p] as number) - completed(p));
    // Refill in halves: fewer, larger writes from the generator.
    if (room < o.window / 2) return;
    const frames: Buffer[] = [];
    for (let k = 0; k < room; k++) {
      const seq = sent[p] as number;
      payload.writeDoubleLE(performance.now(), AT_SENT);
      payload.writeUInt16LE(p, AT_PUBLISHER);
      payload.writeUInt32LE(seq, AT_SEQUENCE);
      frames.push(encodePublish(topics[p] as Buffer, o.qos, (seq % 65_535) + 1, payload));
      sent[p] = seq + 1;
    }
    socket.write(frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames));
  };

  const acks: Buffer[] = [];
  const flow = await openFlow(srv, pubs, sub, o.qos, {
    onDelivery: (packet) => {
      const body = packet.payload as Buffer;
      const p = body.readUInt16LE(AT_PUBLISHER);
      const seq = body.readUInt32LE(AT_SEQUENCE);
      const gaps = missing[p] as Set<number>;
      for (let s = received[p] as number; s < seq; s++) gaps.add(s);
      if (seq < (received[p] as number)) {
        if (gaps.delete(seq)) reordered++;
        else duplicated++;
      }
      received[p] = Math.max(received[p] as number, seq + 1);
      delivered++;
      touched.add(p);
      if (packet.qos === 1) acks.push(encodePuback(packet.messageId as number));
    },
    afterDeliveries: (socket) => {
      if (acks.length > 0) socket.write(acks.length === 1 ? (acks[0] as Buffer) : Buffer.concat(acks));
      acks.length = 0;
      for (const p of touched) pump(p);
      touched.clear();
    },
    onPublisherPacket: (p, packet) => {
      if (packet.cmd !== 'puback') return;
      acked[p] = (acked[p] as number) + 1;
      pump(p);
    },
  });
  pubSockets.push(...flow.publishers);

  try {
    for (let p = 0; p < count; p++) pump(p);
    await sleep(o.warmupMs);
    const d0 = delivered;
    const cpu0 = processCpuSeconds(srv.pid);
    const steal0 = machineStealSeconds();
    const t0 = performance.now();
    let lastProgress = t0;
    let seen = delivered;
    let stalled = false;
    while (delivered - d0 < o.maxMessages && performance.now() - t0 < o.maxMs) {
      await sleep(20);
      if (delivered !== seen) {
        seen = delivered;
        lastProgress = performance.now();
      } else if (performance.now() - lastProgress > 2000) {
        stalled = true;
        break;
      }
    }
    const ms = performance.now() - t0;
    const cpuSeconds = processCpuSeconds(srv.pid) - cpu0;
    const stealShare = stealShareSince(steal0, ms);
    const measured = delivered - d0;
    stopped = true;
    await until(() => pubs.every((_, p) => completed(p) >= (sent[p] as number)), 2000);
    const lost = missing.reduce((n, gaps) => n + gaps.size, 0);
    return { delivered: measured, ms, perSecond: (measured / ms) * 1000, cpuSeconds, perCpuSecond: measured / cpuSeconds, lost, reordered, duplicated, stalled, stealShare };
  } finally {
    stopped = true;
    await flow.close();
  }
}

/** Rounds of one server's connects, pooled: counts and CPU added up. */
export function combineConnects(rounds: readonly ConnectResult[]): ConnectResult {
  const ok = sum(rounds, (r) => r.ok);
  const ms = sum(rounds, (r) => r.ms);
  const cpuSeconds = sum(rounds, (r) => r.cpuSeconds);
  return { ok, failed: sum(rounds, (r) => r.failed), firstError: rounds.find((r) => r.firstError)?.firstError, ms, perSecond: (ok / ms) * 1000, cpuSeconds, perCpuSecond: ok / cpuSeconds, stealShare: sum(rounds, (r) => r.stealShare * r.ms) / ms };
}

/** Rounds of one server's message flow, pooled. */
export function combineFlows(rounds: readonly FlowResult[]): FlowResult {
  const delivered = sum(rounds, (r) => r.delivered);
  const ms = sum(rounds, (r) => r.ms);
  const cpuSeconds = sum(rounds, (r) => r.cpuSeconds);
  return { delivered, ms, perSecond: (delivered / ms) * 1000, cpuSeconds, perCpuSecond: delivered / cpuSeconds, lost: sum(rounds, (r) => r.lost), reordered: sum(rounds, (r) => r.reordered), duplicated: sum(rounds, (r) => r.duplicated), stalled: rounds.some((r) => r.stalled), stealShare: sum(rounds, (r) => r.stealShare * r.ms) / ms };
}

/** The share of the machine's CPU time stolen since `stealBefore` (machineStealSeconds), over `ms` of wall time. */
export function stealShareSince(stealBefore: number, ms: number): number {
  return (machineStealSeconds() - stealBefore) / ((ms / 1000) * cpus().length);
}

function sum<T>(items: readonly T[], of: (item: T) => number): number {
  return items.reduce((n, item) => n + of(item), 0);
}

export interface FlowHandlers {
  readonly onDelivery: (packet: Packet & { cmd: 'publish' }) => void;
  readonly afterDeliveries: (subscriber: TLSSocket) => void;
  readonly onPublisherPacket: (publisher: number, packet: Packet) => void;
}

export interface OpenFlow {
  readonly publishers: readonly TLSSocket[];
  close(): Promise<void>;
}

/** The subscriber (devices/+/# at `qos`, checked granted) and then the publishers, connected. */
export async function openFlow(srv: BenchServer, pubs: readonly Credential[], sub: Credential, qos: 0 | 1, h: FlowHandlers): Promise<OpenFlow> {
  const waiter = new PacketWaiter();
  let subscriber: TLSSocket | undefined;
  subscriber = await openMqtt(srv.port, sub, {
    onPacket: (packet) => {
      if (packet.cmd === 'publish') h.onDelivery(packet);
      else waiter.offer(packet);
    },
    afterChunk: () => subscriber && h.afterDeliveries(subscriber),
  });
  const sockets: TLSSocket[] = [subscriber];
  const close = async () => {
    for (const s of sockets) disconnect(s);
    await Promise.all(sockets.map((s) => closed(s)));
  };
  try {
    const granted = await subscribe(subscriber, waiter, 'devices/+/#', qos);
    if (granted !== qos) throw new Error(`${srv.name}: subscription devices/+/# granted ${granted}, asked ${qos}`);
    const publishers = await Promise.all(pubs.map((cred, p) => openMqtt(srv.port, cred, { onPacket: (packet) => h.onPublisherPacket(p, packet) })));
    sockets.push(...publishers);
    return { publishers, close };
  } catch (err) {
    await close();
    throw err;
  }
}

export async function until(done: () => boolean, maxMs: number): Promise<void> {
  const started = performance.now();
  while (!done() && performance.now() - started < maxMs) await sleep(10);
}
