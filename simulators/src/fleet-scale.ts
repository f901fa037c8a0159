import { EventEmitter, once } from 'node:events';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { connectionCapBelow, raiseFdLimitTo, readFdLimit, TlsfleetError, type FdLimit } from '@tlsfleet/common';
import { enrollWithStore, FileCredentialStore } from '@tlsfleet/device-sdk';
import type { AdminClient } from './admin-client.js';
import { LeanDevice, type LeanDeviceHooks } from './lean/lean-device.js';
import { leanTarget } from './lean/lean-shard-device.js';
import type { FleetSummary } from './report/fleet-summary.js';

/** Connections one local address holds to one broker port: Linux's default ephemeral range is 32768–60999. */
const PER_ADDRESS = 16_000;

/** Open files beyond one per device: enrollment connections, state files, pipes, workers. */
const SIMULATOR_RESERVE = 512;
/** Connections the broker holds beside the fleet: the checker and the revocation probe. */
const BROKER_EXTRA = 64;

/** Open files a fleet of `devices` wants, given this process's limit: what to raise it to, and what is still missing. */
export function fdPlan(devices: number, startsBroker: boolean, limit?: FdLimit): { want: number; brokerConnections: number; brokerCap: number; problems: string[]; most: number } {
  const brokerConnections = devices + BROKER_EXTRA;
  // Enough for the simulator, and for the broker's default cap (the limit less 10 %) too.
  const want = Math.max(devices + SIMULATOR_RESERVE, Math.ceil(brokerConnections / 0.9)) + 1024;
  const problems: string[] = [];
  if (limit === undefined) return { want, brokerConnections, brokerCap: brokerConnections, problems, most: devices };
  const brokerCap = connectionCapBelow(limit, Math.max(100_000, brokerConnections));
  if (limit.soft < devices + SIMULATOR_RESERVE) problems.push(`the simulator needs about ${devices + SIMULATOR_RESERVE} open files`);
  if (startsBroker && brokerCap < brokerConnections) problems.push(`the broker it starts inherits the same limit, which holds ${brokerCap} connections, not ${brokerConnections}`);
  const most = Math.max(1, Math.min(limit.soft - SIMULATOR_RESERVE, startsBroker ? brokerCap - BROKER_EXTRA : Infinity));
  return { want, brokerConnections, brokerCap, problems, most };
}

/**
 * Raises this process's open-file limit for a fleet of `devices` (a broker the simulator
 * starts inherits it at spawn and is given `--max-connections` to match). Raising the hard
 * limit needs root with CAP_SYS_RESOURCE; without it only the soft limit rises. Throws,
 * saying what to do, when the limit stays too low for the simulator or for that broker.
 * Returns the broker's `--max-connections`: the limit less its reserve (as the broker's own
 * default), raised to the fleet's size when that is more than 100,000; undefined when the
 * limit is unknown.
 */
export function ensureFdLimit(devices: number, startsBroker: boolean): number | undefined {
  const limit = raiseFdLimitTo(fdPlan(devices, startsBroker).want) ?? readFdLimit();
  if (limit === undefined) return undefined;
  const { want, brokerCap, problems, most } = fdPlan(devices, startsBroker, limit);
  if (problems.length > 0) {
    // A TlsfleetError: the command line prints the message alone, not a stack.
    throw new TlsfleetError(
      'invalid_request',
      `--devices ${devices}: ${problems.join('; ')}, but the open-file limit is ${limit.soft} (hard ${limit.hard}) and could not be raised to ${want} ` +
        `(raising the hard limit needs root with CAP_SYS_RESOURCE). Raise it before the run (ulimit -n ${want}, prlimit, LimitNOFILE= in a systemd unit), or simulate at most ${most} devices here.`,
    );
  }
  return Number.isFinite(limit.soft) ? brokerCap : undefined;
}

/**
 * Loopback addresses to spread lean devices over when one source address cannot hold the
 * fleet's connections to one broker port: 127.0.0.1, .2, ... (all of 127/8 is loopback on
 * Linux). Undefined when one address is enough or the broker is not on loopback.
 */
export function loopbackSources(brokerUrl: string, devices: number): string[] | undefined {
  const host = new URL(brokerUrl).hostname;
  const loopback = host === 'localhost' || (isIP(host) === 4 && host.startsWith('127.'));
  const n = Math.ceil(devices / PER_ADDRESS);
  if (!loopback || n <= 1) return undefined;
  return Array.from({ length: Math.min(n, 250) }, (_, i) => `127.0.0.${i + 1}`);
}

/** One extra device, outside the fleet, whose revocation is timed while the fleet is up. */
export interface RevocationProbe {
  /** Revokes the probe through the admin API; resolves with ms from the request to its session's close, or undefined if it did not close within `limitMs`. */
  revokeAndTime(limitMs: number): Promise<number | undefined>;
  close(): Promise<void>;
}

export async function startRevocationProbe(opts: { id: string; dir: string; admin: AdminClient; provisioningUrl: string; brokerUrl: string; ca: string }): Promise<RevocationProbe> {
  const identity = await enrollWithStore(new FileCredentialStore(join(opts.dir, opts.id)), {
    token: await opts.admin.mintToken(opts.id, 'device', 86_400),
    provisioningUrl: opts.provisioningUrl,
    bootstrapCa: opts.ca,
  });
  const context = createSecureContext({ ca: identity.caBundlePem, cert: identity.chainPem, key: identity.privateKeyPem, minVersion: 'TLSv1.2' });
  const events = new EventEmitter();
  const hooks: LeanDeviceHooks = {
    connected: () => events.emit('connected'),
    disconnected: () => events.emit('disconnected'),
    error: () => {},
    refused: async () => ({ code: 'revoked', message: 'refused after revocation' }),
    stopped: () => {},
  };
  const device = new LeanDevice(opts.id, 0, context, leanTarget(opts.brokerUrl), hooks);
  const up = once(events, 'connected');
  void device.start();
  await up;
  return {
    async revokeAndTime(limitMs) {
      const closed = once(events, 'disconnected');
      const t0 = performance.now();
      await opts.admin.revoke(opts.id);
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([closed.then(() => performance.now() - t0), new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), limitMs)))]);
      clearTimeout(timer);
      return result;
    },
    close: () => device.close(),
  };
}

/** The run's scale figures, for people: steady footprint, ramp, revocation probe. */
export function scaleLines(s: FleetSummary): string[] {
  const r = s.resources;
  const lines: string[] = [];
  if (r.rssBytesPerDeviceSteady !== undefined && r.cpuMsPerDeviceSteady !== undefined && r.cpuMsPerDeviceRamp !== undefined) {
    lines.push(
      `simulator (${s.config.deviceModel ?? 'sdk'} devices) at steady state: ${(r.rssBytesPerDeviceSteady / 1024).toFixed(1)} KiB RSS per device (peak ${(r.rssBytesPerDevice / 1024).toFixed(1)} KiB); ` +
        `CPU per device ${r.cpuMsPerDeviceRamp.toFixed(2)} ms in the ramp, ${r.cpuMsPerDeviceSteady.toFixed(2)} ms over ${r.steadySeconds} s of publishing`,
    );
  }
  if (r.rampDevicesPerSecond !== undefined && r.rampSeconds !== undefined) {
    // mass-expiry enrolls the fleet before the ramp, with the tokens.
    const before = s.config.scenario === 'mass-expiry' ? `${s.totals.enrolled} enrolled before it, with their tokens, in` : `${s.totals.enrolled} enrolled in it; tokens minted before it in`;
    lines.push(`ramp: ${s.totals.connectedPeak} devices up in ${r.rampSeconds.toFixed(1)} s, ${r.rampDevicesPerSecond.toFixed(1)} devices/s (${before} ${(r.tokenMintSeconds ?? 0).toFixed(1)} s)`);
  }
  if (r.revocationToCloseMs !== undefined) lines.push(`revocation probe: session closed ${r.revocationToCloseMs === null ? 'not within 30 s' : `${(r.revocationToCloseMs / 1000).toFixed(2)} s`} after the revoke request`);
  return lines;
}
