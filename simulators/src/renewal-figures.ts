import type { OwnDeployment } from './fleet-services.js';
import type { RenewalRoute, ShardReport } from './fleet-shard.js';
import { LatencyHistogram } from './latency-histogram.js';
import type { FleetSummary, RenewalFigures } from './report/fleet-summary.js';

interface CpuSample {
  at: number;
  provisioning: number;
  broker: number;
}

/**
 * Collects what the shards say about renewals (when, by which route) and publish waits,
 * and samples the services' CPU once a second, for the summary's `renewal` figures.
 */
export class RenewalTracker {
  readonly events: { index: number; at: number; route: RenewalRoute }[] = [];
  private readonly renewed = new Set<number>();
  private readonly publishWait = new LatencyHistogram();
  private readonly swapPublishWait = new LatencyHistogram();
  private readonly calmPublishWait = new LatencyHistogram();
  private readonly handshakes: { at: number; ms: number }[] = [];
  private readonly cpu: CpuSample[] = [];
  private counted = 0;

  absorb(r: ShardReport): void {
    this.events.push(...r.renewalEvents);
    for (const e of r.renewalEvents) this.renewed.add(e.index);
    for (const ms of r.publishWaitMs) {
      this.publishWait.record(ms);
      this.calmPublishWait.record(ms);
    }
    for (const ms of r.swapPublishWaitMs) {
      this.publishWait.record(ms);
      this.swapPublishWait.record(ms);
    }
    this.handshakes.push(...r.handshakes);
  }

  /** Devices that renewed at least once. */
  get devicesRenewed(): number {
    return this.renewed.size;
  }

  /** Renewals since the last call (for the timeline). */
  sinceLast(): number {
    const n = this.events.length - this.counted;
    this.counted = this.events.length;
    return n;
  }

  /** One CPU sample of the services the simulator started (none for a given deployment). */
  sampleCpu(own: OwnDeployment | undefined): void {
    if (own === undefined) return;
    try {
      this.cpu.push({ at: Date.now(), ...own.cpuSeconds() });
    } catch {
      // A broker being restarted has no /proc entry for a moment: skip the sample.
    }
  }

  /**
   * `brokerIssued`: renewals the simulator's own broker relayed with a certificate as answer
   * (its metrics), used for the renewals whose route the SDK did not say.
   */
  figures(path: 'inband' | 'https', t0: number, fleetUpAt: number | undefined, brokerIssued?: number): RenewalFigures {
    const times = this.events.map((e) => e.at).sort((a, b) => a - b);
    const first = times[0];
    const last = times[times.length - 1];
    const perSecond = new Map<number, number>();
    for (const at of times) perSecond.set(Math.floor(at / 1000), (perSecond.get(Math.floor(at / 1000)) ?? 0) + 1);
    const spanS = first !== undefined && last !== undefined ? (last - first) / 1000 : 0;
    const count = (route: RenewalRoute) => this.events.filter((e) => e.route === route).length;
    let inBand = count('inband');
    let https = count('https');
    let unknownRoute = count('unknown');
    const fromBroker = unknownRoute > 0 && brokerIssued !== undefined;
    if (fromBroker) {
      const relayed = Math.min(unknownRoute, Math.max(0, brokerIssued - inBand));
      inBand += relayed;
      https += unknownRoute - relayed;
      unknownRoute = 0;
    }
    // The handshakes a swap makes are those after the fleet was up; the ramp's compete with enrollments.
    const afterUp = this.handshakes.filter((h) => fleetUpAt !== undefined && h.at >= fleetUpAt);
    const handshakeScope = afterUp.length > 0 ? 'after fleet up' : 'whole run';
    const handshake = histogram((afterUp.length > 0 ? afterUp : this.handshakes).map((h) => h.ms)).percentiles();
    const publishWait = this.publishWait.percentiles();
    const calmPublishWait = this.calmPublishWait.percentiles();
    // One round trip: the p99 publish → PUBACK of the messages no swap touched (all of them if none was untouched).
    const roundTripMs = calmPublishWait.count > 0 ? Math.min(calmPublishWait.p99, calmPublishWait.max) : Math.min(publishWait.p99, publishWait.max);
    const figures: RenewalFigures = {
      path,
      devicesRenewed: this.renewed.size,
      inBand,
      https,
      unknownRoute,
      routesFrom: fromBroker ? 'broker' : 'devices',
      firstAt: first !== undefined ? round1((first - t0) / 1000) : null,
      lastAt: last !== undefined ? round1((last - t0) / 1000) : null,
      peakPerSecond: Math.max(0, ...perSecond.values()),
      meanPerSecond: times.length === 0 ? 0 : spanS < 1 ? times.length : times.length / spanS,
      publishWait,
      swapPublishWait: this.swapPublishWait.percentiles(),
      calmPublishWait,
      handshake,
      handshakeScope,
      roundTripMs,
      blockLimitMs: Math.min(handshake.p99, handshake.max) + roundTripMs,
    };
    const cpu = first !== undefined && last !== undefined ? this.cpuBetween(first, last) : undefined;
    if (cpu) {
      figures.provisioningCpuSeconds = cpu.provisioning;
      figures.provisioningCpuMsPerRenewal = (cpu.provisioning * 1000) / times.length;
      figures.brokerCpuSeconds = cpu.broker;
      figures.brokerCpuMsPerRenewal = (cpu.broker * 1000) / times.length;
    }
    return figures;
  }

  /** CPU used from the last sample at or before `from` to the first at or after `to`. */
  private cpuBetween(from: number, to: number): { provisioning: number; broker: number } | undefined {
    const before = [...this.cpu].reverse().find((s) => s.at <= from) ?? this.cpu[0];
    const after = this.cpu.find((s) => s.at >= to) ?? this.cpu[this.cpu.length - 1];
    if (before === undefined || after === undefined) return undefined;
    return { provisioning: after.provisioning - before.provisioning, broker: Math.max(0, after.broker - before.broker) };
  }
}

function histogram(samples: number[]): LatencyHistogram {
  const h = new LatencyHistogram();
  for (const s of samples) h.record(s);
  return h;
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/** The run's renewal figures as lines for the terminal; none when the summary has none. */
export function renewalLines(s: FleetSummary): string[] {
  const r = s.renewal;
  if (r === undefined) return [];
  const ms = (v: number) => `${v.toFixed(0)} ms`;
  const routes = `in-band ${r.inBand}, HTTPS ${r.https}${r.unknownRoute > 0 ? `, route not said ${r.unknownRoute}` : ''}`;
  const lines = [
    `renewals ${s.totals.renewals} (${routes}; path asked: ${r.path}), ${r.firstAt === null ? 'none' : `from ${r.firstAt} s to ${r.lastAt} s of the run`}; rate peak ${r.peakPerSecond}/s, mean ${r.meanPerSecond.toFixed(1)}/s`,
  ];
  if (r.provisioningCpuSeconds !== undefined && r.brokerCpuSeconds !== undefined) {
    lines.push(`during the renewals: provisioning ${r.provisioningCpuSeconds.toFixed(2)} CPU-s (${r.provisioningCpuMsPerRenewal!.toFixed(2)} CPU-ms per renewal), broker ${r.brokerCpuSeconds.toFixed(2)} CPU-s (${r.brokerCpuMsPerRenewal!.toFixed(2)} per renewal)`);
  }
  if (r.publishWait.count > 0) {
    const w = r.swapPublishWait;
    lines.push(
      `publish → PUBACK away from swaps: p50 ${ms(r.calmPublishWait.p50)}, p99 ${ms(r.calmPublishWait.p99)}, max ${ms(r.calmPublishWait.max)}; during swaps (${w.count}): p99 ${ms(w.p99)}, max ${ms(w.max)}; handshake (${r.handshakeScope}) p50 ${ms(r.handshake.p50)}, p99 ${ms(r.handshake.p99)}, max ${ms(r.handshake.max)}; swap limit ${ms(r.blockLimitMs)}`,
    );
  }
  return lines;
}
