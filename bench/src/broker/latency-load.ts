import { encodePuback, encodePublish, type Credential } from './mqtt-client.js';
import type { BenchServer } from './bench-servers.js';
import { AT_PUBLISHER, AT_SENT, AT_SEQUENCE, openFlow, PAYLOAD_BYTES, stealShareSince, until, type RoundConditions } from './broker-loads.js';
import { machineStealSeconds, processCpuSeconds } from '@tlsfleet/common';

// End-to-end latency at a fixed rate, for the broker benchmark: one round of one server,
// and rounds pooled.

export interface LatencyOptions {
  readonly qos: 0 | 1;
  /** Messages per second, all publishers together, evenly spread. */
  readonly ratePerSecond: number;
  /** Sending time, warm-up included, ms. */
  readonly durationMs: number;
  /** Messages sent in the first `warmupMs` are not sampled. */
  readonly warmupMs: number;
}

export interface LatencyResult extends RoundConditions {
  readonly sent: number;
  readonly samples: number;
  /** Every sampled latency, ms, sorted ascending. */
  readonly latenciesMs: Float64Array;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Messages sent and never delivered (after a 2 s grace). */
  readonly lost: number;
  /** Server CPU seconds per wall second over the sampled part: the share of one core. */
  readonly cpuShare: number;
  /** Wall seconds of the sampled part (for combining rounds). */
  readonly sampledSeconds: number;
}

/** Several rounds as one: samples pooled, CPU share weighted by time. */
export function combineLatency(rounds: readonly LatencyResult[]): LatencyResult {
  const all = new Float64Array(rounds.reduce((n, r) => n + r.latenciesMs.length, 0));
  let o = 0;
  for (const r of rounds) {
    all.set(r.latenciesMs, o);
    o += r.latenciesMs.length;
  }
  all.sort();
  const seconds = rounds.reduce((n, r) => n + r.sampledSeconds, 0);
  return {
    ...percentiles(all),
    sent: rounds.reduce((n, r) => n + r.sent, 0),
    lost: rounds.reduce((n, r) => n + r.lost, 0),
    cpuShare: rounds.reduce((n, r) => n + r.cpuShare * r.sampledSeconds, 0) / seconds,
    stealShare: rounds.reduce((n, r) => n + r.stealShare * r.sampledSeconds, 0) / seconds,
    sampledSeconds: seconds,
  };
}

function percentiles(sorted: Float64Array): Pick<LatencyResult, 'samples' | 'latenciesMs' | 'p50Ms' | 'p99Ms' | 'maxMs'> {
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { samples: sorted.length, latenciesMs: sorted, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: sorted[sorted.length - 1] ?? Number.NaN };
}

/**
 * End-to-end latency (publisher write → subscriber parse, one clock: both ends are this
 * process) at a fixed, moderate rate. Each publisher sends on its own schedule, offset from
 * the others, one message per write, as telemetry does.
 */
export async function benchLatency(srv: BenchServer, pubs: readonly Credential[], sub: Credential, o: LatencyOptions): Promise<LatencyResult> {
  const count = pubs.length;
  const periodMs = (count * 1000) / o.ratePerSecond;
  const total = Math.floor((o.ratePerSecond * o.durationMs) / 1000);
  const samples = new Float64Array(total);
  let sampled = 0;
  let delivered = 0;
  let sentTotal = 0;
  const sent = new Array<number>(count).fill(0);
  const payload = Buffer.alloc(PAYLOAD_BYTES);
  const topics = pubs.map((c) => Buffer.from(`devices/${c.name}/t`));
  let sampleFrom = Number.POSITIVE_INFINITY;

  const acks: Buffer[] = [];
  const flow = await openFlow(srv, pubs, sub, o.qos, {
    onDelivery: (packet) => {
      const now = performance.now();
      const sentAt = (packet.payload as Buffer).readDoubleLE(AT_SENT);
      delivered++;
      if (sentAt >= sampleFrom && sampled < samples.length) samples[sampled++] = now - sentAt;
      if (packet.qos === 1) acks.push(encodePuback(packet.messageId as number));
    },
    afterDeliveries: (socket) => {
      if (acks.length > 0) socket.write(acks.length === 1 ? (acks[0] as Buffer) : Buffer.concat(acks));
      acks.length = 0;
    },
    onPublisherPacket: () => undefined,
  });

  try {
    const start = performance.now();
    sampleFrom = start + o.warmupMs;
    let cpu0 = Number.NaN;
    let steal0 = Number.NaN;
    let t0 = Number.NaN;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const elapsed = performance.now() - start;
        if (Number.isNaN(cpu0) && elapsed >= o.warmupMs) {
          cpu0 = processCpuSeconds(srv.pid);
          steal0 = machineStealSeconds();
          t0 = performance.now();
        }
        for (let p = 0; p < count; p++) {
          const offset = (p * periodMs) / count;
          const due = Math.min(elapsed < offset ? 0 : Math.floor((elapsed - offset) / periodMs) + 1, Math.ceil(total / count));
          while ((sent[p] as number) < due && sentTotal < total) {
            const seq = sent[p] as number;
            payload.writeDoubleLE(performance.now(), AT_SENT);
            payload.writeUInt16LE(p, AT_PUBLISHER);
            payload.writeUInt32LE(seq, AT_SEQUENCE);
            flow.publishers[p]?.write(encodePublish(topics[p] as Buffer, o.qos, (seq % 65_535) + 1, payload));
            sent[p] = seq + 1;
            sentTotal++;
          }
        }
        if (sentTotal >= total || elapsed >= o.durationMs + 1000) {
          clearInterval(tick);
          resolve();
        }
      }, 1);
    });
    const sampledSeconds = (performance.now() - t0) / 1000;
    const cpuShare = (processCpuSeconds(srv.pid) - cpu0) / sampledSeconds;
    const stealShare = stealShareSince(steal0, sampledSeconds * 1000);
    await until(() => delivered >= sentTotal, 2000);
    return { ...percentiles(samples.slice(0, sampled).sort()), sent: sentTotal, lost: sentTotal - delivered, cpuShare, sampledSeconds, stealShare };
  } finally {
    await flow.close();
  }
}
