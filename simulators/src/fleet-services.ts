import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processCpuSeconds } from '@tlsfleet/common';

/** How to run `tlsfleet` (node + the CLI's bin), injected by the CLI. */
export type TlsfleetCommand = readonly string[];

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/** Starts `tlsfleet <args>` and resolves with the URL its ready line names. */
export async function startTlsfleet(cmd: TlsfleetCommand, args: string[], ready: RegExp): Promise<ServiceProcess> {
  const child = spawn(cmd[0]!, [...cmd.slice(1), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TLSFLEET_LOG_LEVEL: 'info' } });
  let out = '';
  const exited = once(child, 'exit');
  // Ready is the info-level JSON listening line; past it, the output is drained unread.
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (d: string) => {
      out = (out + d).slice(-65_536);
      const m = ready.exec(out);
      if (!m) return;
      child.stdout!.off('data', onData);
      resolve(m[1]!);
    };
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-10_000)));
    void exited.then(([code]) => reject(new Error(`tlsfleet ${args[0]} exited with ${String(code)} before it was ready:\n${out}`)));
  });
  // Keep draining its output so a chatty service never blocks on a full pipe.
  child.stdout!.resume();
  return {
    child,
    url,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A provisioning service and a broker the simulator started itself, in a temp data dir. */
export interface OwnDeployment {
  dataDir: string;
  provisioning: ServiceProcess;
  broker: ServiceProcess;
  brokerPort: number;
  restartBroker(): Promise<void>;
  /** CPU seconds used so far by the broker (every instance of it) and by provisioning, from /proc. */
  cpuSeconds(): { broker: number; provisioning: number };
  stop(): Promise<void>;
}

/**
 * Starts provisioning and a broker on 127.0.0.1. With `keepIn`, their data dir lives there
 * and is reused by the next run, so identities kept with --identities stay valid (same CA,
 * same store); without it, a temp dir removed at the end.
 */
export async function startOwnDeployment(cmd: TlsfleetCommand, keepIn?: string, opts: { maxConnections?: number } = {}): Promise<OwnDeployment> {
  const dir = keepIn ?? mkdtempSync(join(tmpdir(), 'tlsfleet-sim-'));
  const dataDir = join(dir, 'data');
  if (!existsSync(join(dataDir, 'ca-bundle.pem'))) {
    const init = spawn(cmd[0]!, [...cmd.slice(1), 'init', '--data-dir', dataDir], { stdio: 'ignore' });
    const [code] = (await once(init, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`tlsfleet init failed with ${String(code)}`);
  }
  // Simulated devices share one address: the per-client limits meant for the internet are off.
  const provisioning = await startTlsfleet(cmd, ['provisioning', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0', '--client-rate', '0', '--max-inflight-per-client', '0', '--max-inflight', '256'], /"url":"(https:\/\/[^"]+)".*"msg":"provisioning listening"/);
  const limits = opts.maxConnections !== undefined ? ['--max-connections', String(opts.maxConnections)] : [];
  const brokerArgs = (port: number) => ['broker', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', String(port), '--health-port', '0', ...limits];
  let broker = await startTlsfleet(cmd, brokerArgs(0), /"url":"(mqtts:\/\/[^"]+)".*"msg":"broker listening"/);
  const brokerPort = Number(new URL(broker.url).port);
  let earlierBrokersCpu = 0;
  const deployment: OwnDeployment = {
    dataDir,
    provisioning,
    broker,
    brokerPort,
    async restartBroker() {
      earlierBrokersCpu += processCpuSeconds(deployment.broker.child.pid!);
      await deployment.broker.stop();
      broker = await startTlsfleet(cmd, brokerArgs(brokerPort), /"url":"(mqtts:\/\/[^"]+)".*"msg":"broker listening"/);
      deployment.broker = broker;
    },
    cpuSeconds: () => ({ broker: earlierBrokersCpu + processCpuSeconds(deployment.broker.child.pid!), provisioning: processCpuSeconds(provisioning.child.pid!) }),
    async stop() {
      await Promise.all([deployment.broker.stop(), provisioning.stop()]);
      if (keepIn === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
  return deployment;
}

export function readAdminToken(dataDir: string): string {
  return readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
}
