import type { Transition } from '../fleet-shard.js';
import { baseVerdicts, type Scenario } from './scenario.js';

/** Every certificate expires in the same minute: every device must renew, none may drop out. */
export const renewalStorm: Scenario = {
  verdicts(ctx, s) {
    const reenroll = ctx.transitions.filter((t) => t.kind === 'reenrollment-required').length;
    return [
      ...baseVerdicts(ctx, s),
      { name: 'renewals done', limit: `≥ ${ctx.config.devices}`, measured: `${s.totals.renewals}`, pass: s.totals.renewals >= ctx.config.devices },
      { name: 'devices that had to enroll again', limit: '0', measured: `${reenroll}`, pass: reenroll === 0 },
      // Disruption: every session moved to its new certificate and came back.
      {
        name: 'devices connected at the end',
        limit: `${ctx.config.devices}`,
        measured: `${ctx.notes.connectedAtEnd as number} (fewest in a 1 s sample after the fleet was up: ${ctx.notes.fewestConnectedAfterUp as number})${downAtEnd(ctx.transitions.slice(0, ctx.notes.transitionsAtEnd as number), ctx.config.devices)}`,
        pass: ctx.notes.connectedAtEnd === ctx.config.devices,
      },
    ];
  },
};

/** Which devices were down at the end and since when, so a miss says whom to look at. */
function downAtEnd(transitions: readonly Transition[], devices: number): string {
  const last = new Map<number, Transition>();
  for (const t of transitions) if ((last.get(t.index)?.at ?? -Infinity) <= t.at) last.set(t.index, t);
  const down: string[] = [];
  for (let i = 0; i < devices; i++) {
    const t = last.get(i);
    if (t?.kind !== 'connected') down.push(t ? `#${i} ${t.kind} at ${new Date(t.at).toISOString()}` : `#${i} never connected`);
  }
  return down.length === 0 ? '' : `; down: ${down.join(', ')}`;
}
