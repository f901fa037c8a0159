import { renewalVerdicts } from './renewal-verdicts.js';
import type { Scenario } from './scenario.js';

/** After every device renewed: time for the last swaps to finish and a publish or two to follow, ms. */
export const HERD_SETTLE_MS = 3000;

/**
 * A renewal herd: the whole fleet enrolls at the ramp with certificates of --cert-ttl (90 s
 * by default), so every renewal point falls within about a minute: 50 % to 85 % of the
 * lifetime after issuance (the service's spread of renewAfter, 60-75 %, and the SDK's ±10 %),
 * about 32 s, plus the ramp. The run lasts until every device renewed once (at most one
 * lifetime past the scenario's start), then settles; the verdicts are the renewal ones, and
 * the summary carries the renewal rate and the services' CPU during the herd.
 */
export const massExpiry: Scenario = {
  async midRun(ctx) {
    const all = await ctx.until(() => ctx.devicesRenewed() >= ctx.config.devices, Date.now() + ctx.config.certTtlSeconds * 1000);
    ctx.mark(all ? 'every device renewed' : `herd cut off: ${ctx.devicesRenewed()} of ${ctx.config.devices} devices renewed`);
    await ctx.until(() => false, Date.now() + HERD_SETTLE_MS + ctx.config.publishIntervalMs);
  },
  verdicts: renewalVerdicts,
};
