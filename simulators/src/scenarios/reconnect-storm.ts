import { baseVerdicts, seconds, type Scenario } from './scenario.js';

/** Time for 99% of the fleet to be back after a broker restart: the backoff's window (60 s) plus slack. */
export const RECOVERY_LIMIT_MS = 90_000;

/** Restart the broker mid-run: how fast does the fleet come back, and what is lost? */
export const reconnectStorm: Scenario = {
  async midRun(ctx) {
    ctx.notes.restartAt = Date.now();
    ctx.mark('broker restart');
    await ctx.restartBroker();
    ctx.notes.brokerBackAt = Date.now();
    ctx.mark('broker back');
  },
  verdicts(ctx, s) {
    const restartAt = ctx.notes.restartAt as number | undefined;
    if (restartAt === undefined) return [{ name: 'broker restarted', limit: 'yes', measured: 'no', pass: false }];
    const back = new Map<number, number>();
    for (const t of ctx.transitions) if (t.kind === 'connected' && t.at > restartAt && !back.has(t.index)) back.set(t.index, t.at);
    const times = [...back.values()].map((at) => at - restartAt).sort((a, b) => a - b);
    const need = Math.ceil(ctx.config.devices * 0.99);
    const t99 = times.length >= need ? times[need - 1]! : Number.POSITIVE_INFINITY;
    ctx.notes.reconnectMs = times;
    return [
      ...baseVerdicts(ctx, s),
      { name: 'time until 99% are back after the restart', limit: `≤ ${seconds(RECOVERY_LIMIT_MS)}`, measured: Number.isFinite(t99) ? seconds(t99) : `only ${times.length} of ${ctx.config.devices} came back`, pass: t99 <= RECOVERY_LIMIT_MS },
    ];
  },
};
