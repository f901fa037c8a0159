import { createDevice, type Device, type DeviceError } from '@tlsfleet/device-sdk';

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
}

export type Transition = { index: number; at: number; kind: 'connected' | 'disconnected' | 'reenrollment-required'; code?: string };

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

interface Running {
  spec: ShardDevice;
  device: Device;
  seq: number;
  ackedSeqs: number[];
  ackedAt: number[];
  timer: NodeJS.Timeout | undefined;
  connected: boolean;
}

/**
 * Runs a share of the fleet in one thread: every device is a real SDK device with its own
 * key, certificate and mTLS connection. Counts what happens and reports deltas.
 */
export class FleetShard {
  private readonly running: Running[] = [];
  private report: ShardReport = emptyReport();
  private connected = 0;
  private stopping = false;
  private outstanding = 0;
  private drained: (() => void) | undefined;
  private rampTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: ShardConfig,
    private readonly devices: ShardDevice[],
  ) {}

  /** Starts devices at the ramp rate; resolves once all have been started (not connected). */
  async start(): Promise<void> {
    const gapMs = 1000 / this.config.ramp;
    const t0 = Date.now();
    for (let i = 0; i < this.devices.length && !this.stopping; i++) {
      const due = t0 + i * gapMs;
      if (due > Date.now()) await new Promise((r) => (this.rampTimer = setTimeout(r, due - Date.now())));
      void this.startDevice(this.devices[i]!);
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
    await Promise.all(this.running.filter((r) => r.device.state === 'reenrollment-required').map((r) => r.device.close()));
    let cut: NodeJS.Timeout | undefined;
    if (this.outstanding > 0) await new Promise<void>((resolve) => {
      this.drained = resolve;
      cut = setTimeout(resolve, drainMs);
    });
    clearTimeout(cut);
    const unacked = this.outstanding;
    await Promise.all(this.running.map((r) => r.device.close()));
    return { type: 'done', acked: this.running.map((r) => ({ index: r.spec.index, seqs: r.ackedSeqs, at: r.ackedAt })), unacked };
  }

  private async startDevice(spec: ShardDevice): Promise<void> {
    const device = createDevice({
      stateDir: spec.stateDir,
      brokerUrl: this.config.brokerUrl,
      provisioningUrl: this.config.provisioningUrl,
      bootstrapCa: this.config.bootstrapCa,
      token: spec.token,
      keepaliveSeconds: 60,
    });
    const r: Running = { spec, device, seq: 0, ackedSeqs: [], ackedAt: [], timer: undefined, connected: false };
    this.running.push(r);
    const startedAt = Date.now();
    let connectFrom = startedAt;
    let first = true;
    device.on('enrolled', () => {
      this.report.enrolled++;
      this.report.enrollMs.push(Date.now() - startedAt);
      connectFrom = Date.now();
    });
    device.on('connected', () => {
      if (first) {
        first = false;
        this.report.connectMs.push(Date.now() - connectFrom);
        this.schedule(r, Math.random() * this.config.publishIntervalMs);
      }
      if (!r.connected) this.connected++;
      r.connected = true;
      this.report.transitions.push({ index: spec.index, at: Date.now(), kind: 'connected' });
    });
    device.on('disconnected', () => {
      if (r.connected) this.connected--;
      r.connected = false;
      this.report.transitions.push({ index: spec.index, at: Date.now(), kind: 'disconnected' });
    });
    device.on('renewed', () => this.report.renewals++);
    device.on('error', (err) => this.countError(err.code));
    device.on('reenrollment-required', (err) => {
      clearTimeout(r.timer);
      this.report.transitions.push({ index: spec.index, at: Date.now(), kind: 'reenrollment-required', code: err.code });
    });
    try {
      await device.start();
      if (spec.token === undefined) this.report.reused++;
    } catch (err) {
      this.report.enrollFailed++;
      this.countError((err as DeviceError).code ?? 'internal_error');
    }
  }

  private schedule(r: Running, delayMs: number): void {
    r.timer = setTimeout(() => {
      if (this.stopping || r.device.state !== 'running') return;
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
    r.device
      .publish('telemetry', payload, { qos: this.config.qos })
      .then(
        () => {
          r.ackedSeqs.push(seq);
          r.ackedAt.push(Date.now());
          this.report.acked++;
        },
        (err: DeviceError) => this.countError(err.code ?? 'internal_error'),
      )
      .finally(() => {
        if (--this.outstanding === 0) this.drained?.();
      });
  }

  private countError(code: string): void {
    this.report.errors[code] = (this.report.errors[code] ?? 0) + 1;
  }
}

function emptyReport(): ShardReport {
  return { type: 'report', sent: 0, acked: 0, connected: 0, enrolled: 0, reused: 0, enrollFailed: 0, enrollMs: [], connectMs: [], renewals: 0, errors: {}, transitions: [] };
}
