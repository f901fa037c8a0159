import type { ScenarioName } from '../report/fleet-summary.js';
import { massExpiry } from './mass-expiry.js';
import { reconnectStorm } from './reconnect-storm.js';
import { renewalStorm } from './renewal-storm.js';
import { revocation } from './revocation.js';
import type { Scenario } from './scenario.js';
import { steady } from './steady.js';

export const SCENARIO_TABLE: Record<ScenarioName, Scenario> = {
  steady,
  'reconnect-storm': reconnectStorm,
  'renewal-storm': renewalStorm,
  revocation,
  'mass-expiry': massExpiry,
};
export type { Scenario, ScenarioContext } from './scenario.js';
