import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { parseDurationMs } from '@tlsfleet/common';
import type { DeviceModel } from './fleet-shard.js';
import type { ScenarioName } from './report/fleet-summary.js';

export const SCENARIOS: readonly ScenarioName[] = ['steady', 'reconnect-storm', 'renewal-storm', 'revocation', 'mass-expiry'];
/** Scenarios that measure renewals: they need the SDK device model. */
export const RENEWAL_SCENARIOS: readonly ScenarioName[] = ['renewal-storm', 'mass-expiry'];
export const RENEWAL_PATHS = ['inband', 'https'] as const;
export type RenewalPath = (typeof RENEWAL_PATHS)[number];

/** mass-expiry's defaults: 2,000 devices, certificates of 3 minutes (renewAfter within about a minute of each other). */
export const MASS_EXPIRY_DEVICES = 2000;
export const MASS_EXPIRY_CERT_TTL_MS = 180_000;
export const DEVICE_MODELS: readonly DeviceModel[] = ['lean', 'sdk'];

/** A simulator run, validated once and frozen. */
export interface FleetConfig {
  devices: number;
  /** New devices per second. */
  ramp: number;
  publishIntervalMs: number;
  qos: 0 | 1;
  payloadBytes: number;
  durationMs: number;
  certTtlSeconds: number;
  scenario: ScenarioName;
  /** Share of the fleet revoked in the `revocation` scenario, percent. */
  revokePercent: number;
  /** Shell command that restarts the broker (reconnect-storm against a broker we did not start). */
  restartHook: string | undefined;
  /** Both set: an existing deployment. Both unset: the simulator starts its own. */
  provisioningUrl: string | undefined;
  brokerUrl: string | undefined;
  dataDir: string | undefined;
  adminToken: string | undefined;
  caFile: string | undefined;
  identitiesDir: string | undefined;
  workers: number;
  reportDir: string | undefined;
  /** Device ids are `<prefix>-<n>`. */
  prefix: string;
  /** How each device runs its session (renewal-storm and mass-expiry need the SDK's renewals: `sdk`). */
  deviceModel: DeviceModel;
  /** Revoke one extra device once the fleet is up and time its session's close. */
  probeRevocation: boolean;
  /**
   * How SDK devices renew: `inband` over MQTT through the broker first (HTTPS when the broker
   * does not answer), `https` at /v1/renew only. With `inband` the simulator's own broker gets a renewal relay.
   */
  renewalPath: RenewalPath;
}

export class SimulateUsageError extends Error {}

function positiveInt(flag: string, value: string | undefined, fallback: number, min = 1, max = 1_000_000): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new SimulateUsageError(`--${flag} must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}`);
  return n;
}

function durationMs(flag: string, value: string | undefined, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const ms = parseDurationMs(value);
  if (ms === undefined || ms <= 0) throw new SimulateUsageError(`--${flag} takes a duration such as 500ms, 30s or 10m, not ${JSON.stringify(value)}`);
  return ms;
}

/** `tlsfleet simulate` flags → a frozen FleetConfig, or a SimulateUsageError that says what is wrong. */
export function parseSimulateArgs(argv: string[]): FleetConfig {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        devices: { type: 'string' },
        ramp: { type: 'string' },
        'publish-interval': { type: 'string' },
        qos: { type: 'string' },
        'payload-bytes': { type: 'string' },
        duration: { type: 'string' },
        'cert-ttl': { type: 'string' },
        scenario: { type: 'string' },
        'revoke-percent': { type: 'string' },
        'restart-hook': { type: 'string' },
        provisioning: { type: 'string' },
        broker: { type: 'string' },
        'data-dir': { type: 'string' },
        'admin-token': { type: 'string' },
        ca: { type: 'string' },
        identities: { type: 'string' },
        workers: { type: 'string' },
        report: { type: 'string' },
        prefix: { type: 'string' },
        'device-model': { type: 'string' },
        'probe-revocation': { type: 'boolean' },
        'renewal-path': { type: 'string' },
      },
    }));
  } catch (err) {
    throw new SimulateUsageError((err as Error).message);
  }
  const scenario = (values.scenario ?? 'steady') as ScenarioName;
  if (values.devices === undefined && scenario !== 'mass-expiry') throw new SimulateUsageError('--devices is required');
  if (!SCENARIOS.includes(scenario)) throw new SimulateUsageError(`--scenario must be one of ${SCENARIOS.join(', ')}, not ${JSON.stringify(values.scenario)}`);
  const renewalPath = (values['renewal-path'] ?? 'inband') as RenewalPath;
  if (!RENEWAL_PATHS.includes(renewalPath)) throw new SimulateUsageError(`--renewal-path must be one of ${RENEWAL_PATHS.join(', ')}, not ${JSON.stringify(values['renewal-path'])}`);
  const qos = values.qos === undefined ? 1 : values.qos === '0' ? 0 : values.qos === '1' ? 1 : undefined;
  if (qos === undefined) throw new SimulateUsageError(`--qos must be 0 or 1, not ${JSON.stringify(values.qos)}`);
  if ((values.provisioning === undefined) !== (values.broker === undefined)) {
    throw new SimulateUsageError('give both --provisioning and --broker for an existing deployment, or neither to let the simulator start its own');
  }
  if (values.provisioning !== undefined && values['data-dir'] === undefined && (values['admin-token'] === undefined || values.ca === undefined)) {
    throw new SimulateUsageError('an existing deployment needs --data-dir DIR, or --admin-token T and --ca FILE, to mint enrollment tokens');
  }
  for (const [flag, scheme] of [['provisioning', 'https:'], ['broker', 'mqtts:']] as const) {
    const url = values[flag];
    if (url !== undefined && (!URL.canParse(url) || new URL(url).protocol !== scheme)) throw new SimulateUsageError(`--${flag} must be a ${scheme}// URL, not ${JSON.stringify(url)}`);
  }
  const model = values['device-model'];
  if (model !== undefined && !DEVICE_MODELS.includes(model as DeviceModel)) throw new SimulateUsageError(`--device-model must be one of ${DEVICE_MODELS.join(', ')}, not ${JSON.stringify(model)}`);
  const renews = RENEWAL_SCENARIOS.includes(scenario);
  if (model === 'lean' && renews) throw new SimulateUsageError(`--scenario ${scenario} needs the SDK's renewals: use --device-model sdk (its default for that scenario)`);
  const deviceModel: DeviceModel = (model as DeviceModel | undefined) ?? (renews ? 'sdk' : 'lean');
  const prefix = values.prefix ?? 'sim';
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$/.test(prefix)) throw new SimulateUsageError('--prefix must be letters, digits, - or _ (at most 41)');
  return Object.freeze({
    devices: positiveInt('devices', values.devices, MASS_EXPIRY_DEVICES, 1, 200_000),
    ramp: positiveInt('ramp', values.ramp, 100, 1, 100_000),
    publishIntervalMs: durationMs('publish-interval', values['publish-interval'], 10_000),
    qos,
    payloadBytes: positiveInt('payload-bytes', values['payload-bytes'], 100, 64, 128 * 1024),
    durationMs: durationMs('duration', values.duration, 60_000),
    certTtlSeconds: Math.max(1, Math.round(durationMs('cert-ttl', values['cert-ttl'], scenario === 'mass-expiry' ? MASS_EXPIRY_CERT_TTL_MS : 7 * 86_400_000) / 1000)),
    scenario,
    revokePercent: positiveInt('revoke-percent', values['revoke-percent'], 10, 1, 100),
    restartHook: values['restart-hook'],
    provisioningUrl: values.provisioning,
    brokerUrl: values.broker,
    dataDir: values['data-dir'],
    adminToken: values['admin-token'],
    caFile: values.ca,
    identitiesDir: values.identities,
    workers: positiveInt('workers', values.workers, Math.max(1, cpus().length), 1, 64),
    reportDir: values.report,
    prefix,
    deviceModel,
    probeRevocation: values['probe-revocation'] === true,
    renewalPath,
  });
}
