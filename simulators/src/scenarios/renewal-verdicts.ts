import type { Transition } from '../fleet-shard.js';
import type { FleetSummary, Verdict } from '../report/fleet-summary.js';
import { baseVerdicts, type ScenarioContext } from './scenario.js';

/**
 * What both renewal scenarios check: every device renewed without enrolling again, every
 * session is there at the end, none was dropped (make-before-break: the application sees no
 * `disconnected`), renewals took the route asked for, and no publish waited during a
 * certificate swap longer than a handshake and a round trip.
 */
export function renewalVerdicts(ctx: ScenarioContext, s: Omit<FleetSummary, 'scenario'>): Verdict[] {
  const n = ctx.config.devices;
  const reenroll = ctx.transitions.filter((t) => t.kind === 'reenrollment-required').length;
  const upAt = (ctx.notes.fleetUpAt as number | undefined) ?? Infinity;
  // Up to the end sample: the devices closed at the end of the run are not dropped sessions.
  const beforeEnd = ctx.transitions.slice(0, ctx.notes.transitionsAtEnd as number);
  const dropped = beforeEnd.filter((t) => t.kind === 'disconnected' && t.at >= upAt).length;
  const r = s.renewal;
  const verdicts: Verdict[] = [
    ...baseVerdicts(ctx, s),
    { name: 'devices that renewed', limit: `${n}`, measured: `${r?.devicesRenewed ?? '?'} (${s.totals.renewals} renewals)`, pass: (r?.devicesRenewed ?? 0) >= n },
    { name: 'devices that had to enroll again', limit: '0', measured: `${reenroll}`, pass: reenroll === 0 },
    {
      name: 'devices connected at the end',
      limit: `${n}`,
      measured: `${ctx.notes.connectedAtEnd as number} (fewest in a 1 s sample after the fleet was up: ${ctx.notes.fewestConnectedAfterUp as number})${downAtEnd(beforeEnd, n)}`,
      pass: ctx.notes.connectedAtEnd === n,
    },
    { name: 'sessions dropped after the fleet was up (disconnected events)', limit: '0', measured: `${dropped}`, pass: dropped === 0 },
  ];
  if (r === undefined) return verdicts;
  if (r.path === 'inband') {
    const routes = `${r.inBand} in-band, ${r.https} over HTTPS${r.unknownRoute > 0 ? `, ${r.unknownRoute} route not said` : ''}`;
    verdicts.push({ name: 'renewals over MQTT through the broker', limit: `all ${s.totals.renewals}`, measured: routes, pass: r.inBand > 0 && r.inBand === s.totals.renewals });
  }
  if (ctx.config.qos === 1) {
    const w = r.swapPublishWait;
    verdicts.push({
      name: 'longest publish → PUBACK during a certificate swap',
      limit: `≤ ${ms(r.blockLimitMs)}: one handshake (p99 ${ms(Math.min(r.handshake.p99, r.handshake.max))}, ${r.handshakeScope}) + one round trip (p99 publish → PUBACK away from swaps ${ms(r.roundTripMs)})`,
      measured: w.count > 0 ? `max ${ms(w.max)}, p99 ${ms(w.p99)} over ${w.count} publishes` : 'no publish during a swap',
      pass: w.count > 0 && w.max <= r.blockLimitMs,
    });
  }
  return verdicts;
}

const ms = (v: number) => `${v.toFixed(0)} ms`;

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
