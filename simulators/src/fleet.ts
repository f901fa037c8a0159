import { exec } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { enrollWithStore, FileCredentialStore } from '@tlsfleet/device-sdk';
import { AdminClient } from './admin-client.js';
import { ErrorTally } from './error-tally.js';
import { RENEWAL_SCENARIOS, type FleetConfig } from './fleet-config.js';
import { ensureFdLimit, loopbackSources, startRevocationProbe, type RevocationProbe } from './fleet-scale.js';
import { readAdminToken, startOwnDeployment, type OwnDeployment, type TlsfleetCommand } from './fleet-services.js';
import type { ShardConfig, ShardDevice, ShardDone, ShardReport, Transition } from './fleet-shard.js';
import { bucketize, LatencyHistogram } from './latency-histogram.js';
import { prepareIdentities } from './fleet-identities.js';
import { Progress } from './progress.js';
import { RenewalTracker } from './renewal-figures.js';
import type { FleetSummary, TimelinePoint } from './report/fleet-summary.js';
import { SCENARIO_TABLE, type ScenarioContext } from './scenarios/index.js';
import { RECOVERY_LIMIT_MS } from './scenarios/reconnect-storm.js';
import { TelemetryChecker } from './telemetry-checker.js';

export interface FleetRunOptions {
  config: FleetConfig;
  /** How to run `tlsfleet` when the simulator starts its own services. */
  tlsfleet: TlsfleetCommand;
  /** Progress output; a TTY gets a live line. */
  out: NodeJS.WriteStream | NodeJS.WritableStream;
}

interface Target {
  provisioningUrl: string;
  brokerUrl: string;
  admin: AdminClient;
  ca: string;
  own: OwnDeployment | undefined;
}

async function connectTarget(config: FleetConfig, tlsfleet: TlsfleetCommand): Promise<Target> {
  if (config.provisioningUrl === undefined || config.brokerUrl === undefined) {
    // Kept identities need the CA and store that issued them: keep the deployment beside them.
    const keepIn = config.identitiesDir !== undefined && !RENEWAL_SCENARIOS.includes(config.scenario) ? join(config.identitiesDir, '.deployment') : undefined;
    if (keepIn !== undefined) mkdirSync(keepIn, { recursive: true, mode: 0o700 });
    // The broker inherits this process's open-file limit (raised for the fleet) and gets a matching cap.
    const maxConnections = ensureFdLimit(config.devices, true);
    // SDK devices renew in-band through the broker: it gets a relay to provisioning.
    const own = await startOwnDeployment(tlsfleet, keepIn, { maxConnections, renewalRelay: config.deviceModel === 'sdk' && config.renewalPath === 'inband' });
    const ca = readFileSync(join(own.dataDir, 'ca-bundle.pem'), 'utf8');
    return { provisioningUrl: own.provisioning.url, brokerUrl: own.broker.url, admin: new AdminClient(own.provisioning.url, readAdminToken(own.dataDir), ca), ca, own };
  }
  ensureFdLimit(config.devices, false);
  const ca = readFileSync(config.caFile ?? join(config.dataDir!, 'ca-bundle.pem'), 'utf8');
  const token = config.adminToken ?? readAdminToken(config.dataDir!);
  return { provisioningUrl: config.provisioningUrl, brokerUrl: config.brokerUrl, admin: new AdminClient(config.provisioningUrl, token, ca), ca, own: undefined };
}

/** How the output names the errors a planned broker restart causes. */
const RESTART_REASON = 'reconnecting: broker restarted (expected in this scenario)';

/**
 * One simulator run: services (given or started), identities (reused or minted), a
 * checker, the fleet in worker threads at the ramp, the scenario's action a third of the
 * way in, a drain, then the summary with the scenario's verdicts.
 */
export async function runFleet({ config, tlsfleet, out }: FleetRunOptions): Promise<FleetSummary> {
  const startedAt = new Date();
  const t0 = startedAt.getTime();
  const target = await connectTarget(config, tlsfleet);
  const scratch = mkdtempSync(join(tmpdir(), 'tlsfleet-sim-ids-'));
  const workers: Worker[] = [];
  const checker = new TelemetryChecker();
  try {
    // A renewal storm needs certificates issued together, so never reuses identities.
    const idsDir = config.identitiesDir !== undefined && !RENEWAL_SCENARIOS.includes(config.scenario) ? config.identitiesDir : join(scratch, 'devices');
    mkdirSync(idsDir, { recursive: true, mode: 0o700 });
    const width = String(config.devices - 1).length;
    const deviceIds = Array.from({ length: config.devices }, (_, i) => `${config.prefix}-${String(i).padStart(width, '0')}`);
    const devices: ShardDevice[] = deviceIds.map((id, index) => ({ index, id, stateDir: join(idsDir, id) }));
    const { tokenMintSeconds, preEnrolled, enrollMs: preEnrollMs } = await prepareIdentities(devices, config, target);

    const checkerId = `${config.prefix}-checker-${process.pid}`;
    const checkerIdentity = await enrollWithStore(new FileCredentialStore(join(scratch, 'checker')), {
      token: await target.admin.mintToken(checkerId, 'service', 86_400),
      provisioningUrl: target.provisioningUrl,
      bootstrapCa: target.ca,
    });
    await checker.start(target.brokerUrl, checkerIdentity);

    const transitions: Transition[] = [];
    const events: FleetSummary['events'] = [];
    const tally = new ErrorTally();
    const errors = tally.errors;
    let restartSettle: { backAt: number; fleetBackAt?: number } | undefined;
    const enrollMs: number[] = [...preEnrollMs];
    const connectMs: number[] = [];
    // Devices enrolled before the ramp start as kept identities: count them enrolled, not reused.
    const totals = { sent: 0, acked: 0, enrolled: preEnrolled, reused: -preEnrolled, enrollFailed: 0, renewals: 0, connectedPeak: 0 };
    const connectedBy = new Map<Worker, number>();
    const renewalTracker = new RenewalTracker();
    const done: ShardDone[] = [];
    let errorsInInterval = 0;
    const absorb = (w: Worker, r: ShardReport) => {
      totals.sent += r.sent;
      totals.acked += r.acked;
      totals.enrolled += r.enrolled;
      totals.reused += r.reused;
      totals.enrollFailed += r.enrollFailed;
      totals.renewals += r.renewals;
      enrollMs.push(...r.enrollMs);
      connectMs.push(...r.connectMs);
      renewalTracker.absorb(r);
      transitions.push(...r.transitions);
      for (const [code, n] of Object.entries(r.errors)) if (tally.add(code, n)) errorsInInterval += n;
      connectedBy.set(w, r.connected);
      totals.connectedPeak = Math.max(totals.connectedPeak, connected());
      fleetUp();
    };
    let fleetUp = () => {};
    // Devices expected connected: all but those told to enroll again (revoked).
    const expectedBack = () => config.devices - new Set(transitions.filter((t) => t.kind === 'reenrollment-required').map((t) => t.index)).size;
    let fleetUpDeadline: NodeJS.Timeout | undefined;
    const connected = () => [...connectedBy.values()].reduce((a, b) => a + b, 0);

    const shardConfig = (ramp: number): ShardConfig => ({
      brokerUrl: target.brokerUrl,
      provisioningUrl: target.provisioningUrl,
      bootstrapCa: target.ca,
      publishIntervalMs: config.publishIntervalMs,
      qos: config.qos,
      payloadBytes: config.payloadBytes,
      ramp,
      deviceModel: config.deviceModel,
      localAddresses: config.deviceModel === 'lean' ? loopbackSources(target.brokerUrl, config.devices) : undefined,
      renewalPath: config.renewalPath,
    });
    const probe: RevocationProbe | undefined = config.probeRevocation
      ? await startRevocationProbe({ id: `${config.prefix}-probe-${process.pid}`, dir: scratch, admin: target.admin, provisioningUrl: target.provisioningUrl, brokerUrl: target.brokerUrl, ca: target.ca })
      : undefined;
    const cpuBefore = process.cpuUsage();
    const rampFrom = Date.now();
    const shards = Array.from({ length: Math.min(config.workers, config.devices) }, (_, w) => devices.filter((d) => d.index % config.workers === w));
    const finished: Promise<void>[] = [];
    for (const shard of shards) {
      const worker = new Worker(new URL('./fleet-worker.js', import.meta.url), { workerData: { config: shardConfig(config.ramp / shards.length), devices: shard, reportEveryMs: 250 } });
      workers.push(worker);
      finished.push(
        new Promise((resolve, reject) => {
          worker.on('message', (msg: ShardReport | ShardDone) => {
            if (msg.type === 'report') absorb(worker, msg);
            else {
              done.push(msg);
              resolve();
            }
          });
          worker.on('error', reject);
          worker.on('exit', () => resolve());
        }),
      );
    }

    const timeline: TimelinePoint[] = [];
    const progress = new Progress(out, config.devices);
    let lastSent = 0;
    let lastReceived = 0;
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      const c = connected();
      timeline.push({
        t: Math.round((Date.now() - t0) / 100) / 10,
        connected: c,
        sentPerS: totals.sent - lastSent,
        receivedPerS: checker.received - lastReceived,
        p50: checker.interval.count ? checker.interval.percentile(50) : null,
        p99: checker.interval.count ? checker.interval.percentile(99) : null,
        errors: errorsInInterval,
        renewals: renewalTracker.sinceLast(),
      });
      renewalTracker.sampleCpu(target.own);
      lastSent = totals.sent;
      lastReceived = checker.received;
      errorsInInterval = 0;
      checker.interval.reset();
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      // A planned restart is over once the fleet has been back a second (errors arrive up to
      // 250 ms late, with the workers' reports), bounded by the scenario's recovery limit.
      if (restartSettle) {
        if (c >= expectedBack()) restartSettle.fleetBackAt ??= Date.now();
        else restartSettle.fleetBackAt = undefined;
        const settled = restartSettle.fleetBackAt !== undefined && Date.now() - restartSettle.fleetBackAt >= 1000;
        if (settled || Date.now() - restartSettle.backAt > RECOVERY_LIMIT_MS) {
          tally.settled();
          restartSettle = undefined;
        }
      }
      progress.update({
        enrolled: totals.enrolled + totals.reused,
        connected: c,
        sent: totals.sent,
        received: checker.received,
        duplicated: checker.duplicated,
        errors: tally.total('errors'),
        expected: tally.total('expected'),
        expectedReason: tally.expectedReason,
      });
    }, 1000);

    const notes: ScenarioContext['notes'] = {};
    const ctx: ScenarioContext = {
      config,
      deviceIds,
      transitions,
      notes,
      mark: (label) => events.push({ t: Math.round((Date.now() - t0) / 100) / 10, label }),
      revoke: (id) => target.admin.revoke(id),
      devicesRenewed: () => renewalTracker.devicesRenewed,
      until: async (cond, deadline) => {
        while (!cond()) {
          if (Date.now() >= deadline) return false;
          await sleep(Math.min(250, deadline - Date.now()));
        }
        return true;
      },
      restartBroker: async () => {
        if (target.own === undefined && config.restartHook === undefined) throw new Error('reconnect-storm against a broker the simulator did not start needs --restart-hook CMD');
        // Devices losing their link and finding the port closed are what a restart looks like, not errors.
        tally.expect(RESTART_REASON);
        if (target.own) await target.own.restartBroker();
        else await new Promise<void>((resolve, reject) => exec(config.restartHook!, (err) => (err ? reject(err) : resolve())));
        restartSettle = { backAt: Date.now() };
      },
    };
    const scenario = SCENARIO_TABLE[config.scenario];
    const servicesBefore = target.own?.cpuSeconds();
    renewalTracker.sampleCpu(target.own);

    // Ramp until the whole fleet is up (or given up on), then the publishing phase; the
    // scenario acts a third of the way in. The ramp rate is a ceiling: enrollment and
    // handshakes may be slower, so the phase waits for the fleet, bounded.
    const rampMs = (config.devices / config.ramp) * 1000;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
    const upBy = Date.now() + 3 * rampMs + 120_000;
    await new Promise<void>((resolve) => {
      fleetUp = () => connected() + totals.enrollFailed >= config.devices && resolve();
      fleetUpDeadline = setTimeout(resolve, upBy - Date.now());
    });
    clearTimeout(fleetUpDeadline);
    fleetUp = () => {};
    ctx.mark('fleet up');
    notes.fleetUpAt = Date.now();
    const publishFrom = Date.now();
    const rampSeconds = (publishFrom - rampFrom) / 1000;
    const cpuAtUp = process.cpuUsage();
    let steadyRss = 0;
    const steadySampler = setInterval(() => (steadyRss = Math.max(steadyRss, process.memoryUsage().rss)), 1000);
    await sleep(config.durationMs / 3);
    if (scenario.midRun) await scenario.midRun(ctx);
    // The probe goes when the fleet has been up a while, apart from the scenario's action.
    const revocationToCloseMs = probe ? await probe.revokeAndTime(30_000) : undefined;
    if (probe) ctx.mark('probe device revoked');
    await sleep(publishFrom + config.durationMs - Date.now());
    steadyRss = Math.max(steadyRss, process.memoryUsage().rss);
    clearInterval(steadySampler);
    const steadyCpu = process.cpuUsage(cpuAtUp);
    const rampCpu = { user: cpuAtUp.user - cpuBefore.user, system: cpuAtUp.system - cpuBefore.system };
    await probe?.close();

    // A device renewing its certificate moves its session: one link closes, the next opens a
    // handshake later. Let the end sample wait for those, bounded, so that "connected at the
    // end" counts devices that dropped out, not a swap caught mid-way. Devices told to
    // enroll again (revoked) are not expected back.
    const settleBy = Date.now() + 3000;
    while (connected() < expectedBack() && Date.now() < settleBy) await sleep(50);
    notes.connectedAtEnd = connected();
    notes.transitionsAtEnd = transitions.length;
    notes.fewestConnectedAfterUp = Math.min(...timeline.filter((p) => p.t >= (events[0]?.t ?? 0)).map((p) => p.connected), connected());
    for (const w of workers) w.postMessage({ type: 'stop' });
    await Promise.all(finished);
    clearInterval(sampler);
    progress.finish();

    // Everything acknowledged should reach the checker; give the last ones a bounded moment.
    const acked = done.flatMap((d) => d.acked);
    const expected = acked.reduce((n, a) => n + a.seqs.length, 0);
    for (const deadline = Date.now() + 10_000; checker.received < expected && Date.now() < deadline; ) await sleep(100);
    let lost = 0;
    for (const a of acked) a.seqs.forEach((seq, i) => !checker.has(a.index, seq) && !checker.wasBlind(a.at[i]!) && lost++);
    await checker.stop();

    const cpu = process.cpuUsage(cpuBefore);
    const servicesAfter = target.own?.cpuSeconds();
    renewalTracker.sampleCpu(target.own);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const partial: Omit<FleetSummary, 'scenario'> = {
      version: 1,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      config: {
        devices: config.devices,
        ramp: config.ramp,
        publishIntervalMs: config.publishIntervalMs,
        qos: config.qos,
        payloadBytes: config.payloadBytes,
        durationMs: config.durationMs,
        certTtlSeconds: config.certTtlSeconds,
        scenario: config.scenario,
        workers: shards.length,
        deviceModel: config.deviceModel,
        brokerUrl: target.brokerUrl,
        provisioningUrl: target.provisioningUrl,
      },
      totals: {
        enrolled: totals.enrolled,
        reused: totals.reused,
        enrollFailed: totals.enrollFailed,
        connectedPeak: totals.connectedPeak,
        sent: totals.sent,
        acked: totals.acked,
        received: checker.received,
        lost,
        duplicated: checker.duplicated,
        outOfOrder: checker.outOfOrder,
        renewals: totals.renewals,
        renewalFailures: transitions.filter((t) => t.kind === 'reenrollment-required').length,
      },
      latency: { endToEnd: checker.endToEnd.percentiles(), enrollment: histogramOf(enrollMs).percentiles(), connect: histogramOf(connectMs).percentiles() },
      histograms: { enrollmentMs: bucketize(enrollMs), connectMs: bucketize(connectMs) },
      timeline,
      errors,
      ...(tally.expectedReason !== undefined ? { expectedErrors: { reason: tally.expectedReason, counts: tally.expected } } : {}),
      resources: {
        simulatorCpuSeconds: cpuSeconds,
        simulatorPeakRssBytes: peakRss,
        cpuMsPerDevice: (cpuSeconds * 1000) / config.devices,
        rssBytesPerDevice: peakRss / config.devices,
        steadyRssBytes: steadyRss,
        rssBytesPerDeviceSteady: steadyRss / config.devices,
        cpuMsPerDeviceRamp: (rampCpu.user + rampCpu.system) / 1000 / config.devices,
        cpuMsPerDeviceSteady: (steadyCpu.user + steadyCpu.system) / 1000 / config.devices,
        steadySeconds: config.durationMs / 1000,
        rampSeconds,
        rampDevicesPerSecond: totals.connectedPeak / rampSeconds,
        tokenMintSeconds,
        ...(probe ? { revocationToCloseMs: revocationToCloseMs ?? null } : {}),
        ...(servicesBefore && servicesAfter
          ? { brokerCpuSeconds: servicesAfter.broker - servicesBefore.broker, provisioningCpuSeconds: servicesAfter.provisioning - servicesBefore.provisioning }
          : {}),
      },
      events,
      ...(totals.renewals > 0 || RENEWAL_SCENARIOS.includes(config.scenario) ? { renewal: renewalTracker.figures(config.renewalPath, t0, notes.fleetUpAt as number | undefined, await target.own?.inbandRenewalsIssued()) } : {}),
    };
    const verdicts = scenario.verdicts(ctx, partial);
    const summary: FleetSummary = { ...partial, scenario: { name: config.scenario, pass: verdicts.every((v) => v.pass), verdicts } };
    if (config.reportDir !== undefined) await writeReport(config.reportDir, summary);
    return summary;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    await checker.stop().catch(() => {});
    await target.own?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

function histogramOf(samples: number[]): LatencyHistogram {
  const h = new LatencyHistogram();
  for (const s of samples) h.record(s);
  return h;
}

async function writeReport(dir: string, summary: FleetSummary): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  const { renderReport } = await import('./report/render-report.js');
  writeFileSync(join(dir, 'report.html'), renderReport(summary));
}
