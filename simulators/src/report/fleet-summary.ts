/**
 * What one simulator run measured: written as summary.json and drawn by report.html.
 * Times are ms unless the name says otherwise; `t` is seconds since the run started.
 */
export interface FleetSummary {
  version: 1;
  startedAt: string;
  finishedAt: string;
  config: {
    devices: number;
    /** New devices per second. */
    ramp: number;
    publishIntervalMs: number;
    qos: 0 | 1;
    payloadBytes: number;
    durationMs: number;
    certTtlSeconds: number;
    scenario: ScenarioName;
    workers: number;
    /** `lean` or `sdk` (absent in summaries written before the lean model: `sdk`). */
    deviceModel?: 'lean' | 'sdk';
    brokerUrl: string;
    provisioningUrl: string;
  };
  totals: {
    enrolled: number;
    /** Reused from --identities instead of enrolled in this run. */
    reused: number;
    enrollFailed: number;
    connectedPeak: number;
    /** Handed to the client library. */
    sent: number;
    /** PUBACKed (QoS 1) or written (QoS 0). */
    acked: number;
    /** Seen by the checker, duplicates excluded. */
    received: number;
    /** Acked but never seen by the checker. */
    lost: number;
    duplicated: number;
    outOfOrder: number;
    renewals: number;
    renewalFailures: number;
  };
  latency: {
    endToEnd: Percentiles;
    enrollment: Percentiles;
    /** TLS handshake + CONNACK. */
    connect: Percentiles;
  };
  histograms: {
    enrollmentMs: HistogramBucket[];
    connectMs: HistogramBucket[];
  };
  /** One point per sampling interval (about a second). */
  timeline: TimelinePoint[];
  /** Stable error code → count: the unexpected ones. */
  errors: Record<string, number>;
  /** Errors a planned disruption of the scenario explains (a broker restart), apart from `errors`. */
  expectedErrors?: { reason: string; counts: Record<string, number> };
  resources: {
    simulatorCpuSeconds: number;
    simulatorPeakRssBytes: number;
    cpuMsPerDevice: number;
    /** Peak RSS over the whole run (enrollment included) per device. */
    rssBytesPerDevice: number;
    /** Highest RSS sampled once the fleet was up (each second of the publishing phase), and per device. */
    steadyRssBytes?: number;
    rssBytesPerDeviceSteady?: number;
    /** Simulator CPU (user + system) per device from the first device's start to fleet up. */
    cpuMsPerDeviceRamp?: number;
    /** Simulator CPU per device over the publishing phase, which lasts `steadySeconds`. */
    cpuMsPerDeviceSteady?: number;
    steadySeconds?: number;
    /** From the first device's start to every device connected (or given up on). */
    rampSeconds?: number;
    /** Devices connected at the peak / rampSeconds. */
    rampDevicesPerSecond?: number;
    /** Minting the enrollment tokens before the ramp (admin API, 16 at a time). */
    tokenMintSeconds?: number;
    /** With --probe-revocation: ms from the revoke request to the probe device's session closed (null: not within 30 s). */
    revocationToCloseMs?: number | null;
    /** Only when the simulator started the services: their CPU seconds during the run, from /proc. */
    brokerCpuSeconds?: number;
    provisioningCpuSeconds?: number;
  };
  /** Marks on the time axis: broker restart, revocation, ... */
  events: { t: number; label: string }[];
  scenario: {
    name: ScenarioName;
    pass: boolean;
    verdicts: Verdict[];
  };
}

export type ScenarioName = 'steady' | 'reconnect-storm' | 'renewal-storm' | 'revocation';

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Count of samples ≤ `le` ms and above the previous bucket's bound. */
export interface HistogramBucket {
  le: number;
  count: number;
}

export interface TimelinePoint {
  t: number;
  connected: number;
  sentPerS: number;
  receivedPerS: number;
  /** End-to-end latency of the messages received in this interval; null when none. */
  p50: number | null;
  p99: number | null;
  errors: number;
}

export interface Verdict {
  name: string;
  /** The stated limit, for people: "≤ 10 s", "0". */
  limit: string;
  /** What was measured, for people: "3.2 s". */
  measured: string;
  pass: boolean;
}
