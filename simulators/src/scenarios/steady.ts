import { baseVerdicts, type Scenario } from './scenario.js';

/** Connect at the ramp, publish for the duration. */
export const steady: Scenario = {
  verdicts: (ctx, s) => [
    ...baseVerdicts(ctx, s),
    { name: 'enrollment failures', limit: '0', measured: `${s.totals.enrollFailed}`, pass: s.totals.enrollFailed === 0 },
  ],
};
