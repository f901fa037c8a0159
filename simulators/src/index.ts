export { parseSimulateArgs, SimulateUsageError, SCENARIOS, type FleetConfig } from './fleet-config.js';
export { runFleet, type FleetRunOptions } from './fleet.js';
export type { FleetSummary, Verdict, ScenarioName } from './report/fleet-summary.js';
export { scaleLines } from './fleet-scale.js';
export { renewalLines } from './renewal-figures.js';
