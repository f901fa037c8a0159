import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { CLI, REPO_ROOT, startBenchFleet } from './bench-fleet.js';
import { fixed, median, table, type Figure, type Target } from './bench-table.js';
import { measureDeviceProcess, measureNodeStartup, type DeviceProgram, type DeviceRun } from './device-process.js';
import { installedMqttSize, installedSdkSize } from './installed-size.js';
import { runToCompletion, stopAllProcesses } from './tracked-processes.js';

// npm run bench:device — what the device SDK costs a device: disk (installed with its
// dependencies, and as the single-file agent), idle memory of a connected process, and
// start-up to connected with a stored identity; each beside a bare mqtt.js client
// measured in the same run. Everything listens on 127.0.0.1, every loop is bounded, and
// only processes started here are stopped (by pid).

/** Rounds that idle each program and read its RSS. */
const RSS_ROUNDS = 5;
/** More rounds that only time the connect (stopped at once): start-up times scatter more than memory. */
const TIMING_ROUNDS = 10;
/** Rounds run and thrown away first: cold file caches and the broker's first sessions. */
const WARMUP_ROUNDS = 1;
/** Connected and idle this long before RSS is read, ms. */
const IDLE_MS = 3_000;
const DEVICE_ID = 'bench-device';

const TARGETS = {
  installedMB: { kind: 'at-most', value: 15, unit: 'MB' },
  rss: { kind: 'ratio-at-most', ratio: 1.1 },
  connectMs: { kind: 'at-most', value: 300, unit: 'ms' },
} as const satisfies Record<string, Target>;

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const MB = 1_000_000;

const work = mkdtempSync(join(tmpdir(), 'tlsfleet-device-bench-'));
const cleanUp = async () => {
  await stopAllProcesses();
  rmSync(work, { recursive: true, force: true });
};
process.once('SIGINT', () => void cleanUp().then(() => process.exit(130)));

try {
  const loadBefore = loadavg()[0] ?? 0;
  const out = (line = '') => console.log(line);
  out(`bench:device — node ${process.version}, ${cpus().length} CPUs; medians: RSS of ${RSS_ROUNDS} runs, times of ${RSS_ROUNDS + TIMING_ROUNDS}, after ${WARMUP_ROUNDS} warm-up round`);
  out();

  const sdk = installedSdkSize(work);
  const mqttOnly = installedMqttSize(work);
  const bundle = await buildBundle(join(work, 'device', 'tlsfleet-agent.mjs'));
  out(
    table('installed with dependencies (npm install)', 'MB', [
      { name: `@tlsfleet/device-sdk + common (${sdk.packages} packages), du`, value: sdk.diskBytes / MB, reference: mqttOnly.diskBytes / MB, target: TARGETS.installedMB },
      { name: `  same, apparent size (mqtt alone: ${mqttOnly.packages} packages)`, value: sdk.apparentBytes / MB, reference: mqttOnly.apparentBytes / MB },
      { name: 'single-file agent bundle (minified), no node_modules', value: bundle.bytes / MB },
      { name: '  same, gzip -9', value: bundle.gzipBytes / MB },
    ], fixed(2)),
  );
  out('  reference: a fresh project with only mqtt installed the same way; MB = 10^6 bytes');
  out();

  const fleet = await startBenchFleet(work);
  const stateDir = join(work, 'device', 'state');
  enroll(stateDir, await fleet.mintToken(DEVICE_ID), fleet.provisioningUrl, fleet.caFile);

  const reference: DeviceProgram = { name: 'bare mqtt.js client', argv: (s, b) => [here('./bare-mqtt-client.js'), s, b] };
  const programs: DeviceProgram[] = [
    { name: 'createDevice (SDK, node_modules)', argv: (s, b) => [here('./sdk-idle-device.js'), s, b] },
    { name: 'agent (device-sdk/dist/agent-main.js)', argv: (s, b) => [join(REPO_ROOT, 'device-sdk/dist/agent-main.js'), 'run', '--state', s, '--broker', b] },
    { name: 'agent bundle (tlsfleet-agent.mjs)', argv: (s, b) => [bundle.path, 'run', '--state', s, '--broker', b] },
    { name: 'tlsfleet device run (CLI)', argv: (s, b) => [CLI, 'device', 'run', '--state', s, '--broker', b] },
  ];
  const { runs, nodeStartupMs } = await measureRounds([reference, ...programs], stateDir, fleet.brokerUrl);
  const summaries = new Map([...runs].map(([name, samples]) => [name, summarize(samples)]));
  const ref = summaries.get(reference.name)!;
  /** The reference's row, then each program beside it. */
  const compared = (pick: (s: Summary) => number, target?: Target, referenceTarget?: Target): Figure[] => [
    { name: reference.name, value: pick(ref), target: referenceTarget },
    ...programs.map((p) => ({ name: p.name, value: pick(summaries.get(p.name)!), reference: pick(ref), target })),
  ];

  out(table(`idle RSS (VmRSS), connected, after ${IDLE_MS / 1000} s idle`, 'MiB', compared((s) => s.rss, TARGETS.rss), fixed(1)));
  out();
  const floor: Figure = { name: 'floor: node -e, spawn → first line', value: median(nodeStartupMs) };
  out(table('spawn → connected line (wall, stored identity)', 'ms', [...compared((s) => s.spawnToConnected, TARGETS.connectMs, TARGETS.connectMs), floor], fixed(0)));
  out();
  out(table('start of connecting → connected (afterMs, inside)', 'ms', compared((s) => s.after), fixed(0)));
  out();
  out('every run (spread):');
  for (const [name, samples] of runs) {
    const rss = samples.filter((s) => s.idled).map((s) => (s.run.rssBytes / 2 ** 20).toFixed(1));
    const times = samples.map((s) => s.run.spawnToConnectedMs.toFixed(0));
    out(`  ${name}: RSS MiB ${rss.join(' ')}; spawn→connected ms ${times.join(' ')}`);
  }
  out(`  node -e: ${nodeStartupMs.map((ms) => ms.toFixed(0)).join(' ')}`);
  out();
  out(`load average before/after: ${loadBefore.toFixed(2)} / ${(loadavg()[0] ?? 0).toFixed(2)} (other work on the machine skews every figure)`);
} finally {
  await cleanUp();
}

interface Sample {
  run: DeviceRun;
  /** Whether this run idled before its RSS was read (timing-only runs read it at once). */
  idled: boolean;
}

/**
 * Each round runs every program once, in an order that rotates, so background load hits
 * them alike; one after the other, as they share the device identity (and clientId).
 */
async function measureRounds(programs: DeviceProgram[], stateDir: string, brokerUrl: string): Promise<{ runs: Map<string, Sample[]>; nodeStartupMs: number[] }> {
  const runs = new Map(programs.map((p) => [p.name, [] as Sample[]]));
  const nodeStartupMs: number[] = [];
  for (let round = 0; round < WARMUP_ROUNDS + RSS_ROUNDS + TIMING_ROUNDS; round++) {
    const counted = round >= WARMUP_ROUNDS;
    const idled = round < WARMUP_ROUNDS + RSS_ROUNDS;
    const startup = await measureNodeStartup();
    if (counted) nodeStartupMs.push(startup);
    for (let i = 0; i < programs.length; i++) {
      const program = programs[(round + i) % programs.length]!;
      const run = await measureDeviceProcess(program, stateDir, brokerUrl, idled ? IDLE_MS : 0);
      if (counted) runs.get(program.name)!.push({ run, idled });
    }
  }
  return { runs, nodeStartupMs };
}

interface Summary {
  /** Median VmRSS of the idled runs, MiB. */
  rss: number;
  spawnToConnected: number;
  after: number;
}

function summarize(samples: Sample[]): Summary {
  return {
    rss: median(samples.filter((s) => s.idled).map((s) => s.run.rssBytes)) / 2 ** 20,
    spawnToConnected: median(samples.map((s) => s.run.spawnToConnectedMs)),
    after: median(samples.map((s) => s.run.afterMs)),
  };
}

/** The agent's own `enroll`, as a device would run it once at first boot. */
function enroll(stateDir: string, token: string, provisioningUrl: string, caFile: string): void {
  runToCompletion(process.execPath, [join(REPO_ROOT, 'device-sdk/dist/agent-main.js'), 'enroll', '--token', token, '--provisioning', provisioningUrl, '--state', stateDir, '--bootstrap-ca', caFile], { timeoutMs: 60_000 });
}

/** scripts/build-agent.mjs is plain JavaScript outside every TypeScript project: loaded by URL, typed here. */
async function buildBundle(outFile: string): Promise<{ path: string; bytes: number; gzipBytes: number }> {
  mkdirSync(join(outFile, '..'), { recursive: true });
  const script = pathToFileURL(join(REPO_ROOT, 'scripts/build-agent.mjs')).href;
  const { buildAgent } = (await import(script)) as { buildAgent(outFile: string): Promise<{ outFile: string; bytes: number }> };
  const { bytes } = await buildAgent(outFile);
  return { path: outFile, bytes, gzipBytes: gzipSync(readFileSync(outFile), { level: 9 }).length };
}
