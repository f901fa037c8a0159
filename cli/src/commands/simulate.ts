import { fileURLToPath } from 'node:url';
import { parseSimulateArgs, renewalLines, runFleet, scaleLines, SimulateUsageError, type FleetSummary } from '@tlsfleet/simulators';
import { UsageError } from '../usage-error.js';
import { parseCommandLine } from '@tlsfleet/common';
import { SIMULATE } from '../definitions/simulate.js';

/** `tlsfleet simulate`: exit 0 when every verdict of the scenario passes, 1 when one fails. */
export async function simulateCommand(argv: string[]): Promise<number> {
  // Names first, for did-you-mean; the simulator checks the values.
  parseCommandLine(SIMULATE, argv);
  let config;
  try {
    config = parseSimulateArgs(argv);
  } catch (err) {
    if (err instanceof SimulateUsageError) throw new UsageError(err.message);
    throw err;
  }
  // The simulator starts its own services with this same CLI.
  const bin = fileURLToPath(new URL('../../bin/tlsfleet.js', import.meta.url));
  const summary = await runFleet({ config, tlsfleet: [process.execPath, bin], out: process.stderr });
  process.stdout.write(verdictText(summary));
  return summary.scenario.pass ? 0 : 1;
}

function verdictText(s: FleetSummary): string {
  const t = s.totals;
  const lines = [
    `scenario ${s.scenario.name}: ${s.scenario.pass ? 'PASS' : 'FAIL'}`,
    ...s.scenario.verdicts.map((v) => `  ${v.pass ? 'pass' : 'FAIL'}  ${v.name}: ${v.measured} (limit ${v.limit})`),
    `devices ${s.config.devices} (enrolled ${t.enrolled}, reused ${t.reused}, failed ${t.enrollFailed}), connected peak ${t.connectedPeak}`,
    `messages sent ${t.sent}, acked ${t.acked}, received ${t.received}, lost ${t.lost}, duplicated ${t.duplicated}, out of order ${t.outOfOrder}; renewals ${t.renewals}`,
    `latency end-to-end p50 ${s.latency.endToEnd.p50.toFixed(1)} ms p99 ${s.latency.endToEnd.p99.toFixed(1)} ms; enrollment p99 ${s.latency.enrollment.p99.toFixed(0)} ms; connect p99 ${s.latency.connect.p99.toFixed(0)} ms`,
    `simulator ${s.resources.cpuMsPerDevice.toFixed(1)} CPU ms and ${(s.resources.rssBytesPerDevice / 1024).toFixed(1)} KiB RSS per device`,
  ];
  lines.push(...scaleLines(s), ...renewalLines(s));
  const r = s.resources;
  if (r.brokerCpuSeconds !== undefined && r.provisioningCpuSeconds !== undefined) {
    lines.push(`services: broker ${r.brokerCpuSeconds.toFixed(1)} CPU-s for ${t.connectedPeak} devices and ${t.received} deliveries; provisioning ${r.provisioningCpuSeconds.toFixed(1)} CPU-s for ${t.enrolled + t.renewals} issuances`);
  }
  const errors = Object.entries(s.errors);
  if (errors.length) lines.push(`errors: ${errors.map(([c, n]) => `${c} ${n}`).join(', ')}`);
  // A planned broker restart's refusals and dropped links, apart from the errors and said why.
  const expected = s.expectedErrors;
  if (expected) lines.push(`${expected.reason}: ${Object.entries(expected.counts).map(([c, n]) => `${c} ${n}`).join(', ')}`);
  return lines.join('\n') + '\n';
}
