export interface PoolRun {
  readonly ok: number;
  readonly failed: number;
  readonly ms: number;
}

/**
 * Runs `op` from `concurrency` loops until `max` operations started or `maxMs` passed;
 * `op` gets the operation's index and answers whether it succeeded.
 */
export async function pool(concurrency: number, max: number, maxMs: number, op: (i: number) => Promise<boolean>): Promise<PoolRun> {
  const started = performance.now();
  let next = 0;
  let ok = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < max && performance.now() - started < maxMs) {
        if (await op(next++)) ok++;
        else failed++;
      }
    }),
  );
  return { ok, failed, ms: performance.now() - started };
}
