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
        measured: `${ctx.notes.connectedAtEnd as number} (fewest in a 1 s sample after the fleet was up: ${ctx.notes.fewestConnectedAfterUp as number})`,
        pass: ctx.notes.connectedAtEnd === ctx.config.devices,
      },
    ];
  },
};
