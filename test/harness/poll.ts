/**
 * Repeats `probe` until `done` accepts its result, at most `tries` times. No timers: each
 * round is a real request, so the loop waits on the service, not on the clock.
 */
export async function pollUntil<T>(what: string, probe: () => Promise<T>, done: (value: T) => boolean, tries = 500): Promise<T> {
  let last: T | undefined;
  for (let i = 0; i < tries; i++) {
    last = await probe();
    if (done(last)) return last;
  }
  throw new Error(`gave up waiting for ${what} after ${tries} tries; last: ${String(last)}`);
}
