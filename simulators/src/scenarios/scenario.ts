import type { FleetConfig } from '../fleet-config.js';
import type { Transition } from '../fleet-shard.js';
import type { FleetSummary, Verdict } from '../report/fleet-summary.js';

/** What a scenario may see and do during a run. */
export interface ScenarioContext {
  config: FleetConfig;
  deviceIds: string[];
  /** Every connected / disconnected / reenrollment-required of every device, in arrival order. */
  transitions: Transition[];
  /** Marks a moment on the report's time axis. */
  mark(label: string): void;
  revoke(deviceId: string): Promise<void>;
  /** Restarts the broker (the simulator's own, or through --restart-hook). */
  restartBroker(): Promise<void>;
  /** State the scenario keeps between its action and its verdicts. */
  notes: Record<string, number | number[]>;
  /** Devices that renewed at least once so far. */
  devicesRenewed(): number;
  /** Resolves true once `done()` holds (checked every 250 ms), false at `deadline` (ms since the epoch). */
  until(done: () => boolean, deadline: number): Promise<boolean>;
}

export interface Scenario {
  /** Done once, a third of the way into the publishing phase. */
  midRun?(ctx: ScenarioContext): Promise<void>;
  verdicts(ctx: ScenarioContext, summary: Omit<FleetSummary, 'scenario'>): Verdict[];
}

/** Verdicts every scenario shares: the fleet came up and nothing acknowledged was lost. */
export function baseVerdicts(ctx: ScenarioContext, s: Omit<FleetSummary, 'scenario'>): Verdict[] {
  const n = ctx.config.devices;
  const verdicts: Verdict[] = [
    { name: 'devices enrolled or reused', limit: `${n}`, measured: `${s.totals.enrolled + s.totals.reused}`, pass: s.totals.enrolled + s.totals.reused === n },
    { name: 'devices connected at the peak', limit: `${n}`, measured: `${s.totals.connectedPeak}`, pass: s.totals.connectedPeak === n },
  ];
  if (ctx.config.qos === 1) verdicts.push({ name: 'QoS 1 messages lost', limit: '0', measured: `${s.totals.lost}`, pass: s.totals.lost === 0 && s.totals.acked > 0 });
  return verdicts;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
