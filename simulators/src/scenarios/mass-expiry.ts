import { renewalVerdicts } from './renewal-verdicts.js';
import type { Scenario } from './scenario.js';

/** After every device renewed: time for the last swaps to finish and a publish or two to follow, ms. */
export const HERD_SETTLE_MS = 3000;

/**
 * A renewal herd: the whole fleet is enrolled before the ramp, as fast as the machine allows
 * (fleet-identities.ts), with certificates of --cert-ttl (3 minutes by default), so every
 * renewAfter falls within about a minute: the service spreads it over 60-75 % of the lifetime
 * (27 s of 3 minutes) after issuance, plus the time the enrollments took. The SDK moves each
 * device's moment by ±10 % of the lifetime. The ramp only connects. The run lasts until every
 * device renewed once (at most one lifetime past the scenario's start), then settles; the
 * verdicts are the renewal ones, and the summary carries the renewal rate and the services'
 * CPU during the herd.
 */
export const massExpiry: Scenario = {
  async midRun(ctx) {
    const all = await ctx.until(() => ctx.devicesRenewed() >= ctx.config.devices, Date.now() + ctx.config.certTtlSeconds * 1000);
    ctx.mark(all ? 'every device renewed' : `herd cut off: ${ctx.devicesRenewed()} of ${ctx.config.devices} devices renewed`);
    await ctx.until(() => false, Date.now() + HERD_SETTLE_MS + ctx.config.publishIntervalMs);
  },
  verdicts: renewalVerdicts,
};
