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
    /** Minting the enrollment tokens before the ramp (admin API, 16 at a time); mass-expiry: minting and enrolling (32 at a time). */
    tokenMintSeconds?: number;
    /** With --probe-revocation: ms from the revoke request to the probe device's session closed (null: not within 30 s). */
    revocationToCloseMs?: number | null;
    /** Only when the simulator started the services: their CPU seconds during the run, from /proc. */
    brokerCpuSeconds?: number;
    provisioningCpuSeconds?: number;
  };
  /** SDK devices: how the renewals went and what they cost (absent when nothing renewed in a scenario not about renewals). */
  renewal?: RenewalFigures;
  /** Marks on the time axis: broker restart, revocation, ... */
  events: { t: number; label: string }[];
  scenario: {
    name: ScenarioName;
    pass: boolean;
    verdicts: Verdict[];
  };
}

export type ScenarioName = 'steady' | 'reconnect-storm' | 'renewal-storm' | 'revocation' | 'mass-expiry';

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
  /** Renewals done in this interval (absent in summaries written before it was counted). */
  renewals?: number;
}

/** Renewals over a run: their route, their rate, the services' CPU and how long publishes waited meanwhile. */
export interface RenewalFigures {
  /** What the devices were told to use (--renewal-path): `inband` (MQTT first, HTTPS as fallback) or `https`. */
  path: 'inband' | 'https';
  /** Devices that renewed at least once (totals.renewals counts every renewal). */
  devicesRenewed: number;
  /** How each renewal went, as the device SDK said: over MQTT through the broker, over HTTPS, or not said. */
  inBand: number;
  https: number;
  unknownRoute: number;
  /** Where the split comes from: the devices' `renewed` events, or the count of certificates the simulator's own broker relayed (its metrics). */
  routesFrom: 'devices' | 'broker';
  /** First and last renewal, seconds since the run started; null when none. */
  firstAt: number | null;
  lastAt: number | null;
  /** Most renewals in one second, and the mean rate from the first renewal to the last. */
  peakPerSecond: number;
  meanPerSecond: number;
  /**
   * Only when the simulator started the services: their CPU seconds from the last sample (1 s
   * apart) before the first renewal to the first one after the last, and per renewal in ms.
   */
  provisioningCpuSeconds?: number;
  provisioningCpuMsPerRenewal?: number;
  brokerCpuSeconds?: number;
  brokerCpuMsPerRenewal?: number;
  /** QoS 1: from handing a message to the SDK to its PUBACK, every message of the run. */
  publishWait: Percentiles;
  /** The same, for messages in flight when their device renewed or handed over at most 10 s after (during a swap). */
  swapPublishWait: Percentiles;
  /** The same, for every other message: what a publish waits when no swap is near. */
  calmPublishWait: Percentiles;
  /** One round trip: the p99 of calmPublishWait (of publishWait when every message was near a swap). */
  roundTripMs: number;
  /**
   * From the start of each successful connection attempt to its CONNACK (TLS handshake +
   * CONNECT): those made after the fleet was up (certificate swaps, reconnections) when there
   * are any, else every one of the run (`handshakeScope`).
   */
  handshake: Percentiles;
  handshakeScope: 'after fleet up' | 'whole run';
  /** Longest a publish may wait during a swap: p99 handshake + one round trip (roundTripMs). */
  blockLimitMs: number;
}

export interface Verdict {
  name: string;
  /** The stated limit, for people: "≤ 10 s", "0". */
  limit: string;
  /** What was measured, for people: "3.2 s". */
  measured: string;
  pass: boolean;
}
