import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processCpuSeconds } from '@tlsfleet/common';
import { enrollWithStore, FileCredentialStore } from '@tlsfleet/device-sdk';
import { AdminClient } from './admin-client.js';

/** How to run `tlsfleet` (node + the CLI's bin), injected by the CLI. */
export type TlsfleetCommand = readonly string[];

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  /** The ready line's JSON fields (the broker's names its healthUrl). */
  ready: Record<string, unknown>;
  stop(): Promise<void>;
}

/** Starts `tlsfleet <args>` and resolves with the URL its ready line names. */
export async function startTlsfleet(cmd: TlsfleetCommand, args: string[], ready: RegExp): Promise<ServiceProcess> {
  const child = spawn(cmd[0]!, [...cmd.slice(1), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TLSFLEET_LOG_LEVEL: 'info' } });
  let out = '';
  const exited = once(child, 'exit');
  // Ready is the info-level JSON listening line; past it, the output is drained unread.
  let fields: Record<string, unknown> = {};
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (d: string) => {
      out = (out + d).slice(-65_536);
      const m = ready.exec(out);
      if (!m) return;
      child.stdout!.off('data', onData);
      const end = out.indexOf('\n', m.index);
      try {
        fields = JSON.parse(out.slice(out.lastIndexOf('\n', m.index) + 1, end < 0 ? undefined : end)) as Record<string, unknown>;
      } catch {
        // Not one JSON line: only the URL is known.
      }
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
    ready: fields,
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
  /** Renewals the broker (every instance of it) relayed and answered with a certificate, from its /metrics; undefined if unreadable. */
  inbandRenewalsIssued(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/**
 * Starts provisioning and a broker on 127.0.0.1. With `keepIn`, their data dir lives there
 * and is reused by the next run, so identities kept with --identities stay valid (same CA,
 * same store); without it, a temp dir removed at the end.
 */
/** The service identity the simulator's broker relays in-band renewals to provisioning with. */
export const RELAY_IDENTITY = 'simulator-renewal-relay';

export async function startOwnDeployment(cmd: TlsfleetCommand, keepIn?: string, opts: { maxConnections?: number; renewalRelay?: boolean } = {}): Promise<OwnDeployment> {
  const dir = keepIn ?? mkdtempSync(join(tmpdir(), 'tlsfleet-sim-'));
  const dataDir = join(dir, 'data');
  if (!existsSync(join(dataDir, 'ca-bundle.pem'))) {
    const init = spawn(cmd[0]!, [...cmd.slice(1), 'init', '--data-dir', dataDir], { stdio: 'ignore' });
    const [code] = (await once(init, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`tlsfleet init failed with ${String(code)}`);
  }
  // Simulated devices share one address: the per-client limits meant for the internet are off.
  const relay = opts.renewalRelay === true;
  const relayFlag = relay ? ['--renewal-relay', RELAY_IDENTITY] : [];
  const provisioning = await startTlsfleet(cmd, ['provisioning', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0', '--client-rate', '0', '--max-inflight-per-client', '0', '--max-inflight', '256', ...relayFlag], /"url":"(https:\/\/[^"]+)".*"msg":"provisioning listening"/);
  const limits = opts.maxConnections !== undefined ? ['--max-connections', String(opts.maxConnections)] : [];
  if (relay) {
    try {
      limits.push('--relay-provisioning', provisioning.url, '--relay-identity', await enrollRelay(dir, dataDir, provisioning.url));
    } catch (err) {
      await provisioning.stop();
      throw err;
    }
  }
  const brokerArgs = (port: number) => ['broker', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', String(port), '--health-port', '0', ...limits];
  let broker = await startTlsfleet(cmd, brokerArgs(0), /"url":"(mqtts:\/\/[^"]+)".*"msg":"broker listening"/);
  const brokerPort = Number(new URL(broker.url).port);
  let earlierBrokersCpu = 0;
  let earlierBrokersIssued = 0;
  const deployment: OwnDeployment = {
    dataDir,
    provisioning,
    broker,
    brokerPort,
    async restartBroker() {
      earlierBrokersCpu += processCpuSeconds(deployment.broker.child.pid!);
      earlierBrokersIssued += (await inbandIssued(deployment.broker)) ?? 0;
      await deployment.broker.stop();
      broker = await startTlsfleet(cmd, brokerArgs(brokerPort), /"url":"(mqtts:\/\/[^"]+)".*"msg":"broker listening"/);
      deployment.broker = broker;
    },
    inbandRenewalsIssued: async () => {
      const now = await inbandIssued(deployment.broker);
      return now === undefined ? undefined : earlierBrokersIssued + now;
    },
    cpuSeconds: () => ({ broker: earlierBrokersCpu + processCpuSeconds(deployment.broker.child.pid!), provisioning: processCpuSeconds(provisioning.child.pid!) }),
    async stop() {
      await Promise.all([deployment.broker.stop(), provisioning.stop()]);
      if (keepIn === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
  return deployment;
}

/** `tlsfleet_broker_inband_renewals_total{result="issued"}` of a broker, read from its health port; undefined when it cannot be read. */
async function inbandIssued(broker: ServiceProcess): Promise<number | undefined> {
  const health = broker.ready.healthUrl;
  if (typeof health !== 'string') return undefined;
  try {
    const res = await fetch(new URL('/metrics', health), { signal: AbortSignal.timeout(5000) });
    if (!res.ok) return undefined;
    const m = /^tlsfleet_broker_inband_renewals_total\{result="issued"\} (\d+)$/m.exec(await res.text());
    // The counter appears with its first renewal: a broker that answered none has no line yet.
    return m ? Number(m[1]) : 0;
  } catch {
    return undefined;
  }
}

/**
 * Enrolls the broker's relay identity (a service identity named RELAY_IDENTITY) into a fresh
 * state dir under `dir`, as `tlsfleet device enroll --state DIR` would; returns the dir.
 */
async function enrollRelay(dir: string, dataDir: string, provisioningUrl: string): Promise<string> {
  const state = join(dir, 'relay-identity');
  rmSync(state, { recursive: true, force: true });
  const ca = readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8');
  const token = await new AdminClient(provisioningUrl, readAdminToken(dataDir), ca).mintToken(RELAY_IDENTITY, 'service', 7 * 86_400);
  await enrollWithStore(new FileCredentialStore(state), { token, provisioningUrl, bootstrapCa: ca });
  return state;
}

export function readAdminToken(dataDir: string): string {
  return readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
}
