import mqtt, { type MqttClient } from 'mqtt';
import type { DeviceIdentity } from '@tlsfleet/device-sdk';
import { LatencyHistogram } from './latency-histogram.js';

interface DeviceTrack {
  maxSeq: number;
  seen: Set<number>;
}

/**
 * A backend service identity subscribed to the fleet's telemetry: every message carries
 * a device index, a per-device sequence number and a send time, so losses, duplicates,
 * reordering and end-to-end latency are measured where a real consumer would see them.
 */
export class TelemetryChecker {
  readonly endToEnd = new LatencyHistogram();
  /** Latency of what arrived since the last timeline sample. */
  readonly interval = new LatencyHistogram();
  received = 0;
  duplicated = 0;
  outOfOrder = 0;
  private readonly tracks = new Map<number, DeviceTrack>();
  /** [from, to) spans without a live subscription: what the broker acked then could not reach us. */
  readonly blindSpans: [number, number][] = [];
  private blindSince: number | undefined = Date.now();
  private client: MqttClient | undefined;

  async start(brokerUrl: string, identity: DeviceIdentity): Promise<void> {
    this.client = mqtt.connect(brokerUrl, {
      protocolVersion: 4,
      clientId: identity.deviceId,
      key: identity.privateKeyPem,
      cert: identity.chainPem,
      ca: identity.caBundlePem,
      clean: true,
      reconnectPeriod: 100,
      keepalive: 30,
      resubscribe: false,
    });
    this.client.on('error', () => {});
    this.client.on('close', () => (this.blindSince ??= Date.now()));
    this.client.on('message', (_topic, payload) => this.onMessage(payload));
    const subscribed = new Promise<void>((resolve) => {
      this.client!.on('connect', () => {
        this.client!.subscribe('devices/+/telemetry', { qos: 1 }, (err) => {
          if (err) return;
          if (this.blindSince !== undefined) this.blindSpans.push([this.blindSince, Date.now()]);
          this.blindSince = undefined;
          resolve();
        });
      });
    });
    await subscribed;
  }

  /** True if `at` fell while the checker could not receive. */
  wasBlind(at: number, marginMs = 1000): boolean {
    if (this.blindSince !== undefined && at >= this.blindSince - marginMs) return true;
    return this.blindSpans.some(([from, to]) => at >= from - marginMs && at < to + marginMs);
  }

  has(index: number, seq: number): boolean {
    return this.tracks.get(index)?.seen.has(seq) ?? false;
  }

  async stop(): Promise<void> {
    await this.client?.endAsync(true);
  }

  private onMessage(payload: Buffer): void {
    let m: { d?: unknown; s?: unknown; t?: unknown };
    try {
      m = JSON.parse(payload.toString('utf8')) as typeof m;
    } catch {
      return;
    }
    if (typeof m.d !== 'number' || typeof m.s !== 'number' || typeof m.t !== 'number') return;
    let track = this.tracks.get(m.d);
    if (!track) this.tracks.set(m.d, (track = { maxSeq: -1, seen: new Set() }));
    if (track.seen.has(m.s)) {
      this.duplicated++;
      return;
    }
    track.seen.add(m.s);
    if (m.s < track.maxSeq) this.outOfOrder++;
    track.maxSeq = Math.max(track.maxSeq, m.s);
    this.received++;
    const latency = Date.now() - m.t;
    this.endToEnd.record(latency);
    this.interval.record(latency);
  }
}
