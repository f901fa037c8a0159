import { baseVerdicts, seconds, type Scenario } from './scenario.js';

/** What the broker promises: a revoked device's live session ends within 10 s. */
export const REVOCATION_LIMIT_MS = 10_000;

/** Revoke a share of the fleet mid-run: are they cut off in time, and do they stay out? */
export const revocation: Scenario = {
  async midRun(ctx) {
    const count = Math.max(1, Math.round((ctx.config.devices * ctx.config.revokePercent) / 100));
    const step = ctx.config.devices / count;
    const chosen = Array.from({ length: count }, (_, i) => Math.floor(i * step));
    ctx.mark(`revoked ${count} devices`);
    const revokedAt: number[] = [];
    for (const index of chosen) {
      await ctx.revoke(ctx.deviceIds[index]!);
      revokedAt.push(Date.now());
    }
    ctx.notes.revoked = chosen;
    ctx.notes.revokedAt = revokedAt;
  },
  verdicts(ctx, s) {
    const chosen = (ctx.notes.revoked as number[] | undefined) ?? [];
    const revokedAt = (ctx.notes.revokedAt as number[] | undefined) ?? [];
    const delays: number[] = [];
    let readmitted = 0;
    let told = 0;
    chosen.forEach((index, i) => {
      const at = revokedAt[i]!;
      const mine = ctx.transitions.filter((t) => t.index === index && t.at >= at);
      const cut = mine.find((t) => t.kind === 'disconnected' || t.kind === 'reenrollment-required');
      delays.push(cut ? cut.at - at : Number.POSITIVE_INFINITY);
      readmitted += mine.filter((t) => t.kind === 'connected').length;
      if (mine.some((t) => t.kind === 'reenrollment-required')) told++;
    });
    const worst = delays.length ? Math.max(...delays) : Number.POSITIVE_INFINITY;
    ctx.notes.revocationDelaysMs = delays;
    // The fleet minus the revoked devices must still be whole: reuse the shared checks, which count all devices.
    return [
      ...baseVerdicts(ctx, s),
      { name: 'revocation → disconnect, slowest device', limit: `≤ ${seconds(REVOCATION_LIMIT_MS)}`, measured: Number.isFinite(worst) ? seconds(worst) : 'never', pass: worst <= REVOCATION_LIMIT_MS },
      { name: 'revoked devices let back in', limit: '0', measured: `${readmitted}`, pass: readmitted === 0 && chosen.length > 0 },
      { name: 'revoked devices told to enroll again', limit: `${chosen.length}`, measured: `${told}`, pass: told === chosen.length },
    ];
  },
};
