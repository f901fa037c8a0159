import { startLeanDevice, leanTarget, type LeanShard } from './lean/lean-shard-device.js';
import type { LeanTarget } from './lean/lean-device.js';
import { startSdkDevice } from './sdk-shard-device.js';

/** One simulated device as the main thread hands it to a shard. */
export interface ShardDevice {
  index: number;
  id: string;
  stateDir: string;
  /** Absent when the identity is reused from --identities. */
  token?: string;
}

export interface ShardConfig {
  brokerUrl: string;
  provisioningUrl: string;
  bootstrapCa: string;
  publishIntervalMs: number;
  qos: 0 | 1;
  payloadBytes: number;
  /** New devices per second in this shard. */
  ramp: number;
  /** `sdk`: each device a device-SDK createDevice (mqtt.js). `lean`: SDK enrollment and identity, a minimal MQTT client. */
  deviceModel: DeviceModel;
  /** Lean devices bind their connections to these local addresses in turn (many devices to one loopback port). */
  localAddresses?: string[];
  /** SDK devices: renew in-band over MQTT first, or at /v1/renew only. */
  renewalPath: 'inband' | 'https';
}

export type DeviceModel = 'sdk' | 'lean';

/** Lean devices of one shard enrolling or making their first connection at once. */
const STARTING_AT_ONCE = 48;

/** What a shard needs from a device of either model. */
export interface SimDevice {
  readonly state: string;
  /** `done` once: no code when acknowledged (QoS 1) or written (QoS 0), else the error code. */
  publish(payload: string, qos: 0 | 1, done: (errorCode?: string) => void): void;
  close(): Promise<void>;
}

export type Transition = { index: number; at: number; kind: 'connected' | 'disconnected' | 'reenrollment-required'; code?: string };

/** How a renewal reached the service: over MQTT through the broker, at /v1/renew (or /v1/renew-expired), or not said. */
export type RenewalRoute = 'inband' | 'https' | 'unknown';

/**
 * A publish counts as made during a certificate swap when its device renewed while it was in
 * flight or at most this long before it was handed over: the swap (new session, moved
 * subscriptions and in-flight messages) happens within that time after the renewal.
 */
export const SWAP_WINDOW_MS = 10_000;

/** What a shard tells the main thread every few hundred ms: deltas since the last report. */
export interface ShardReport {
  type: 'report';
  sent: number;
  acked: number;
  connected: number;
  enrolled: number;
  reused: number;
  enrollFailed: number;
  enrollMs: number[];
  connectMs: number[];
  renewals: number;
  /** Each renewal: which device, when (ms since the epoch) and how it went. */
  renewalEvents: { index: number; at: number; route: RenewalRoute }[];
  /** QoS 1: ms from handing a message over to its PUBACK, for messages made outside a swap / during one (SWAP_WINDOW_MS). */
  publishWaitMs: number[];
  swapPublishWaitMs: number[];
  /** SDK devices: each successful connection attempt, when it was up and ms from its start to the CONNACK (TLS handshake included). */
  handshakes: { at: number; ms: number }[];
  errors: Record<string, number>;
  transitions: Transition[];
}

export interface ShardDone {
  type: 'done';
  /** Per device: seq and time (ms since the epoch) of each message acknowledged (QoS 1) or written (QoS 0). */
  acked: { index: number; seqs: number[]; at: number[] }[];
  /** Still unacknowledged when the drain deadline passed. */
  unacked: number;
}

export interface Running {
  spec: ShardDevice;
  /** Set once the device exists (a lean device: once its identity is loaded or enrolled). */
  device: SimDevice | undefined;
  seq: number;
  ackedSeqs: number[];
  ackedAt: number[];
  timer: NodeJS.Timeout | undefined;
  connected: boolean;
  startedAt: number;
  /** When the MQTT connection was first asked for (after enrollment). */
  connectFrom: number;
  everConnected: boolean;
  /** When this device renewed (ms since the epoch), newest last. */
  renewedAt: number[];
}

/**
 * Runs a share of the fleet in one thread: every device has its own key, certificate and
 * mTLS connection, as a full SDK device or a lean one (config.deviceModel). Counts what
 * happens and reports deltas.
 */
export class FleetShard implements LeanShard {
  readonly running: Running[] = [];
  private report: ShardReport = emptyReport();
  private connected = 0;
  private stopping = false;
  private outstanding = 0;
  private drained: (() => void) | undefined;
  private rampTimer: NodeJS.Timeout | undefined;

  readonly leanTarget: LeanTarget | undefined;

  constructor(
    readonly config: ShardConfig,
    private readonly devices: ShardDevice[],
  ) {
    this.leanTarget = config.deviceModel === 'lean' ? leanTarget(config.brokerUrl) : undefined;
  }

  /**
   * Starts devices at the ramp rate; resolves once all have been started (not connected).
   * Lean devices also wait for a slot: at most STARTING_AT_ONCE enroll or make their first
   * connection at a time, so a machine slower than the ramp queues devices in order instead
   * of opening thousands of enrollments that time out together.
   */
  async start(): Promise<void> {
    const gapMs = 1000 / this.config.ramp;
    const t0 = Date.now();
    const limit = this.config.deviceModel === 'lean' ? STARTING_AT_ONCE : Infinity;
    let starting = 0;
    let freed: (() => void) | undefined;
    for (let i = 0; i < this.devices.length && !this.stopping; i++) {
      const due = t0 + i * gapMs;
      if (due > Date.now()) await new Promise((r) => (this.rampTimer = setTimeout(r, due - Date.now())));
      while (starting >= limit && !this.stopping) await new Promise<void>((r) => (freed = r));
      if (this.stopping) break;
      starting++;
      void this.startDevice(this.devices[i]!).finally(() => {
        starting--;
        freed?.();
      });
    }
  }

  /** Everything since the last call. */
  takeReport(): ShardReport {
    const r = this.report;
    r.connected = this.connected;
    this.report = emptyReport();
    return r;
  }

  /** Stops publishing, waits (bounded) for outstanding acknowledgements, closes every device. */
  async stop(drainMs = 10_000): Promise<ShardDone> {
    this.stopping = true;
    clearTimeout(this.rampTimer);
    for (const r of this.running) clearTimeout(r.timer);
    // Revoked or expired devices will never get their queue acknowledged: closing them settles it.
    await Promise.all(this.running.filter((r) => r.device?.state === 'reenrollment-required').map((r) => r.device!.close()));
    let cut: NodeJS.Timeout | undefined;
    if (this.outstanding > 0) await new Promise<void>((resolve) => {
      this.drained = resolve;
      cut = setTimeout(resolve, drainMs);
    });
    clearTimeout(cut);
    const unacked = this.outstanding;
    await Promise.all(this.running.map((r) => r.device?.close()));
    return { type: 'done', acked: this.running.map((r) => ({ index: r.spec.index, seqs: r.ackedSeqs, at: r.ackedAt })), unacked };
  }

  private async startDevice(spec: ShardDevice): Promise<void> {
    const now = Date.now();
    const r: Running = { spec, device: undefined, seq: 0, ackedSeqs: [], ackedAt: [], timer: undefined, connected: false, startedAt: now, connectFrom: now, everConnected: false, renewedAt: [] };
    this.running.push(r);
    await (this.config.deviceModel === 'lean' ? startLeanDevice(this, r) : startSdkDevice(this, r));
  }

  onEnrolled(r: Running): void {
    this.report.enrolled++;
    this.report.enrollMs.push(Date.now() - r.startedAt);
    r.connectFrom = Date.now();
  }

  onReused(): void {
    this.report.reused++;
  }

  onStartFailed(code: string): void {
    this.report.enrollFailed++;
    this.countError(code);
  }

  onConnected(r: Running, attemptMs?: number): void {
    if (attemptMs !== undefined) this.report.handshakes.push({ at: Date.now(), ms: attemptMs });
    if (!r.everConnected) {
      r.everConnected = true;
      this.report.connectMs.push(Date.now() - r.connectFrom);
      this.schedule(r, Math.random() * this.config.publishIntervalMs);
    }
    if (!r.connected) this.connected++;
    r.connected = true;
    this.report.transitions.push({ index: r.spec.index, at: Date.now(), kind: 'connected' });
  }

  onDisconnected(r: Running): void {
    if (r.connected) this.connected--;
    r.connected = false;
    this.report.transitions.push({ index: r.spec.index, at: Date.now(), kind: 'disconnected' });
  }

  onRenewed(r: Running, route: RenewalRoute): void {
    this.report.renewals++;
    const at = Date.now();
    r.renewedAt.push(at);
    this.report.renewalEvents.push({ index: r.spec.index, at, route });
  }

  onReenrollmentRequired(r: Running, code: string): void {
    clearTimeout(r.timer);
    this.report.transitions.push({ index: r.spec.index, at: Date.now(), kind: 'reenrollment-required', code });
  }

  private schedule(r: Running, delayMs: number): void {
    r.timer = setTimeout(() => {
      if (this.stopping || r.device?.state !== 'running') return;
      this.publish(r);
      this.schedule(r, this.config.publishIntervalMs);
    }, delayMs);
  }

  private publish(r: Running): void {
    const seq = r.seq++;
    const head = `{"d":${r.spec.index},"s":${seq},"t":${Date.now()},"p":"`;
    const payload = head + 'x'.repeat(Math.max(0, this.config.payloadBytes - head.length - 2)) + '"}';
    this.report.sent++;
    this.outstanding++;
    const from = Date.now();
    r.device!.publish(payload, this.config.qos, (code) => {
      if (code === undefined) {
        const at = Date.now();
        r.ackedSeqs.push(seq);
        r.ackedAt.push(at);
        this.report.acked++;
        if (this.config.qos === 1) {
          const duringSwap = r.renewedAt.some((renewed) => renewed >= from - SWAP_WINDOW_MS && renewed <= at);
          (duringSwap ? this.report.swapPublishWaitMs : this.report.publishWaitMs).push(at - from);
        }
      } else this.countError(code);
      if (--this.outstanding === 0) this.drained?.();
    });
  }

  countError(code: string): void {
    this.report.errors[code] = (this.report.errors[code] ?? 0) + 1;
  }
}

function emptyReport(): ShardReport {
  return { type: 'report', sent: 0, acked: 0, connected: 0, enrolled: 0, reused: 0, enrollFailed: 0, enrollMs: [], connectMs: [], renewals: 0, renewalEvents: [], publishWaitMs: [], swapPublishWaitMs: [], handshakes: [], errors: {}, transitions: [] };
}
