// A synthetic but plausible run, for rendering the report without a fleet: a
// reconnect-storm of 1,000 devices (ramp 100/s, QoS 1 every 10 s, 60 s) whose broker
// restarts at t = 35 s. Deterministic, so the tests can count what each chart must plot.
import type { FleetSummary, HistogramBucket, TimelinePoint } from './fleet-summary.js';

const DEVICES = 1000;
const RAMP_PER_S = 100;
const RESTART_AT_S = 35;
const SECONDS = 70;

/** Connected devices after the restart at t = 35 s, second by second, until all are back. */
const RECOVERY = [0, 0, 310, 720, 960, 995];

function connectedAt(t: number): number {
  if (t < RESTART_AT_S) return Math.min(DEVICES, RAMP_PER_S * t);
  return RECOVERY[t - RESTART_AT_S] ?? DEVICES;
}

function timelinePoint(t: number): TimelinePoint {
  const connected = connectedAt(t);
  const wobble = 1 + 0.05 * Math.sin(t);
  const sentPerS = Math.round((connected / 10) * wobble);
  // Queued QoS 1 messages arrive in a burst once the devices are back.
  const catchUp = t === RESTART_AT_S + 2 ? 180 : t === RESTART_AT_S + 3 ? 60 : 0;
  const receivedPerS = t === RESTART_AT_S || t === RESTART_AT_S + 1 ? 0 : sentPerS + catchUp;
  const measured = receivedPerS > 0;
  return {
    t,
    connected,
    sentPerS,
    receivedPerS,
    p50: measured ? round(4.5 + Math.sin(t / 3) + (catchUp > 0 ? 40 : 0)) : null,
    p99: measured ? round(28 + 6 * Math.cos(t / 2) + (catchUp > 0 ? 2400 : 0)) : null,
    errors: t === RESTART_AT_S ? 1000 : t > RESTART_AT_S && t < RESTART_AT_S + 5 ? 440 : 0,
  };
}

const round = (n: number): number => Math.round(n * 10) / 10;

/** A fresh copy each call, so a test may change it. */
export function sampleSummary(): FleetSummary {
  const timeline = Array.from({ length: SECONDS }, (_, t) => timelinePoint(t));
  const sent = timeline.reduce((n, p) => n + p.sentPerS, 0);
  const acked = sent - 12;
  const lost = 3;
  return {
    version: 1,
    startedAt: '2025-11-22T14:00:00.000Z',
    finishedAt: '2025-11-22T14:01:10.000Z',
    config: {
      devices: DEVICES,
      ramp: RAMP_PER_S,
      publishIntervalMs: 10_000,
      qos: 1,
      payloadBytes: 256,
      durationMs: 60_000,
      certTtlSeconds: 45,
      scenario: 'reconnect-storm',
      workers: 2,
      brokerUrl: 'mqtts://127.0.0.1:8883',
      provisioningUrl: 'https://127.0.0.1:8443',
    },
    totals: {
      enrolled: DEVICES,
      reused: 0,
      enrollFailed: 0,
      connectedPeak: DEVICES,
      sent,
      acked,
      received: acked - lost,
      lost,
      duplicated: 4,
      outOfOrder: 0,
      renewals: 987,
      renewalFailures: 13,
    },
    latency: {
      endToEnd: { count: acked - lost, p50: 4.6, p90: 9.8, p99: 31.2, p999: 2210, max: 2890 },
      enrollment: { count: DEVICES, p50: 88, p90: 190, p99: 620, p999: 1700, max: 1840 },
      connect: { count: 2 * DEVICES, p50: 9.1, p90: 48, p99: 410, p999: 1900, max: 3100 },
    },
    histograms: {
      enrollmentMs: buckets([10, 20, 50, 100, 200, 500, 1000, 2000], [0, 12, 388, 430, 121, 38, 9, 2]),
      connectMs: buckets([5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000], [310, 720, 402, 251, 160, 88, 41, 19, 7, 2]),
    },
    timeline,
    errors: { rate_limited: 41, connack_timeout: 6 },
    expectedErrors: { reason: 'reconnecting: broker restarted (expected in this scenario)', counts: { connection_refused: 1730, network: 1000 } },
    resources: {
      simulatorCpuSeconds: 21.4,
      simulatorPeakRssBytes: 148 * 1024 * 1024,
      cpuMsPerDevice: 21.4,
      rssBytesPerDevice: Math.round((148 * 1024 * 1024) / DEVICES),
    },
    events: [
      { t: 10, label: 'ramp done' },
      { t: RESTART_AT_S, label: 'broker restart' },
      { t: 39.4, label: '99% back' },
    ],
    scenario: {
      name: 'reconnect-storm',
      pass: false,
      verdicts: [
        { name: 'back to 99% connected after the restart', limit: '≤ 30 s', measured: '4.4 s', pass: true },
        { name: 'QoS 1 messages lost', limit: '0', measured: '3', pass: false },
        { name: 'devices that never came back', limit: '0', measured: '0', pass: true },
      ],
    },
  };
}

function buckets(bounds: number[], counts: number[]): HistogramBucket[] {
  return bounds.map((le, i) => ({ le, count: counts[i] ?? 0 }));
}
