import { renewalVerdicts } from './renewal-verdicts.js';
import type { Scenario } from './scenario.js';

/** Certificates issued together at the ramp and short-lived (--cert-ttl): the fleet renews in the same minute, none may drop out. */
export const renewalStorm: Scenario = {
  verdicts: renewalVerdicts,
};
