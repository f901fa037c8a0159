import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareFixture } from './bench-fixture.js';
import { startNodeServer, stopAll, type BenchServer } from './bench-servers.js';
import { benchConnects, benchFlow } from './broker-loads.js';
import { benchLatency } from './latency-load.js';
import { num } from './bench-report.js';
import { summarizeProfile } from './profile-summary.js';
import { processCpuSeconds } from '@tlsfleet/common';

// Where our broker's CPU goes under each load of the broker benchmark: a fresh broker per
// load under `node --cpu-prof`, then self time by function and by origin.
// Usage: node bench/dist/broker/profile-broker.js [connect] [qos0] [qos1] [latency]   (default: all)
//        PROFILE_KEEP=DIR keeps the .cpuprofile files there (open them in Chrome DevTools).

const LOADS = {
  connect: (srv: BenchServer, f: Fixture) =>
    benchConnects(srv, f.devices, { max: 2_000, maxMs: 15_000, concurrency: 16, warmup: 50 }).then((r) => `${r.ok} connects (+50 warm-up), ${num(r.perCpuSecond)} per CPU-second`),
  qos0: (srv: BenchServer, f: Fixture) => benchFlow(srv, f.devices.slice(0, 10), f.service, { qos: 0, maxMessages: 300_000, maxMs: 5_000, warmupMs: 1_000, window: 50 }).then((r) => `${num(r.perCpuSecond)} QoS 0 messages per CPU-second`),
  qos1: (srv: BenchServer, f: Fixture) => benchFlow(srv, f.devices.slice(0, 10), f.service, { qos: 1, maxMessages: 200_000, maxMs: 5_000, warmupMs: 1_000, window: 50 }).then((r) => `${num(r.perCpuSecond)} QoS 1 messages per CPU-second`),
  latency: (srv: BenchServer, f: Fixture) => benchLatency(srv, f.devices.slice(0, 10), f.service, { qos: 0, ratePerSecond: 1_000, durationMs: 10_000, warmupMs: 1_000 }).then((r) => `QoS 0 p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, ${(r.cpuShare * 100).toFixed(1)} % of a core`),
} as const;
type Fixture = ReturnType<typeof prepareFixture>;
const TOP = Number(process.env.PROFILE_TOP ?? 25);

const asked = process.argv.slice(2);
const unknown = asked.filter((a) => !(a in LOADS));
if (unknown.length > 0) {
  console.error(`unknown load(s) ${unknown.join(', ')}; choose from ${Object.keys(LOADS).join(', ')}`);
  process.exit(2);
}
const loads = (asked.length > 0 ? asked : Object.keys(LOADS)) as (keyof typeof LOADS)[];

const work = mkdtempSync(join(tmpdir(), 'tlsfleet-broker-profile-'));
process.once('SIGINT', () => void stopAll().then(() => rmSync(work, { recursive: true, force: true })).then(() => process.exit(130)));
try {
  const fixture = prepareFixture(work, 2_050, 'telemetry');
  for (const load of loads) {
    const dir = process.env.PROFILE_KEEP ? join(process.env.PROFILE_KEEP, load) : join(work, `prof-${load}`);
    const srv = await startNodeServer('broker', './serve-broker.js', [fixture.dataDir], ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
    const figure = await LOADS[load](srv, fixture);
    const cpuSeconds = processCpuSeconds(srv.pid);
    await srv.stop();
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no profile written in ${dir}`);
    const summary = summarizeProfile(join(dir, file));
    console.log(`\n=== ${load}: ${figure} (under the profiler) ===`);
    console.log(
      `broker process: ${num(cpuSeconds, 2)} CPU-s from /proc (all threads, start-up included); main-thread samples: ${num(summary.totalMs)} ms in JavaScript/GC/program, ` +
        `${num(summary.excludedMs)} ms "(idle)" (waiting, and native work with no JS on the stack: TLS handshakes, record crypto)`,
    );
    console.log('self time by origin:');
    for (const o of summary.origins.slice(0, 12)) console.log(`  ${(o.share * 100).toFixed(1).padStart(5)} %  ${num(o.ms).padStart(7)} ms  ${o.name}`);
    console.log(`self time by function (top ${TOP}):`);
    for (const fn of summary.functions.slice(0, TOP)) console.log(`  ${(fn.share * 100).toFixed(1).padStart(5)} %  ${num(fn.ms).padStart(7)} ms  ${fn.name}`);
    console.log('total time (self + callees) of our functions:');
    for (const fn of summary.oursInclusive.slice(0, 12)) console.log(`  ${(fn.share * 100).toFixed(1).padStart(5)} %  ${num(fn.ms).padStart(7)} ms  ${fn.name}`);
  }
} finally {
  await stopAll();
  rmSync(work, { recursive: true, force: true });
}
