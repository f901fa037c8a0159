type Stop = 'SIGTERM' | 'SIGINT';

/** Resolves on the first SIGTERM or SIGINT, so the caller can drain and exit 0. */
export function untilSignal(): Promise<Stop>;
/** With `reloads`, also yields SIGHUP (reload) each time it arrives, until SIGTERM/SIGINT. */
export function untilSignal(reloads: true): { next(): Promise<Stop | 'SIGHUP'> };
export function untilSignal(reloads?: true): Promise<Stop> | { next(): Promise<Stop | 'SIGHUP'> } {
  const pending: (Stop | 'SIGHUP')[] = [];
  let wake: (() => void) | undefined;
  const on = (signal: NodeJS.Signals) => {
    pending.push(signal as Stop | 'SIGHUP');
    wake?.();
  };
  process.on('SIGTERM', on);
  process.on('SIGINT', on);
  if (reloads) process.on('SIGHUP', on);
  const next = async (): Promise<Stop | 'SIGHUP'> => {
    while (pending.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    const signal = pending.shift() as Stop | 'SIGHUP';
    if (signal !== 'SIGHUP') {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      process.off('SIGHUP', on);
    }
    return signal;
  };
  if (reloads) return { next };
  return (async () => {
    for (;;) {
      const s = await next();
      if (s !== 'SIGHUP') return s;
    }
  })();
}

/**
 * An AbortSignal that SIGTERM or SIGINT aborts, for a start-up that may wait on something
 * outside (Redis) before the main loop's `untilSignal` is read; `dispose()` stops listening.
 */
export function abortOnStop(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const abort = () => controller.abort();
  process.once('SIGTERM', abort);
  process.once('SIGINT', abort);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGTERM', abort);
      process.off('SIGINT', abort);
    },
  };
}
