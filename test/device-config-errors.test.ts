import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mintToken, startBrokerProcess, startFleetEnv, type FleetEnv } from './harness/broker-env.js';
import { CLI, runCli, type Service } from './harness/cli.js';
import { freePort } from './harness/free-port.js';
import { openssl } from './harness/openssl.js';

// A wrong bootstrap CA, an unknown host, a refused port: `device enroll` says which at once
// and exits with EX_CONFIG (78); `device run` says it once and backs off, slowly when the
// broker's certificate does not verify.

let env: FleetEnv;
let otherCaFile: string;
let otherCert: { cert: string; key: string };
beforeAll(async () => {
  env = await startFleetEnv();
  // A CA of someone else, made by openssl: a self-signed certificate for 127.0.0.1.
  const dir = join(env.dir, 'other-ca');
  mkdirSync(dir);
  const made = await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=Other CA', '-days', '1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  expect(made.code, made.stderr).toBe(0);
  otherCaFile = join(dir, 'cert.pem');
  otherCert = { cert: readFileSync(otherCaFile, 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
});
afterAll(async () => {
  await env.stop();
});

const running: { child: ChildProcess; exited: Promise<unknown> }[] = [];
const servers: TlsServer[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM');
    await r.exited;
  }
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
});

const stateOf = (name: string) => join(env.dir, 'agents', name);

function enroll(name: string, token: string, provisioning: string, bootstrapCa = env.caFile) {
  return runCli(['device', 'enroll', '--token', token, '--provisioning', provisioning, '--state', stateOf(name), '--bootstrap-ca', bootstrapCa]);
}

/** A port that refuses: bound, then closed. */
async function refusedPort(): Promise<number> {
  return freePort();
}

/** `tlsfleet device run` with its JSON lines parsed as they come. */
function runAgent(args: string[]) {
  const child = spawn(process.execPath, [CLI, 'device', 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  running.push({ child, exited });
  const events: Record<string, unknown>[] = [];
  const waiters: { match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }[] = [];
  let buffered = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const e = JSON.parse(line) as Record<string, unknown>;
      events.push({ ...e, seenAt: Date.now() });
      for (const w of waiters.filter((x) => x.match(e))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(events.at(-1)!);
      }
    }
  });
  return {
    child,
    events,
    stderr: () => stderr,
    next(match: (e: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ match, resolve });
        void exited.then(() => reject(new Error(`device run exited first: ${JSON.stringify(events)} ${stderr}`)));
      });
    },
  };
}

async function enrolled(name: string): Promise<void> {
  const r = await enroll(name, await mintToken(env, name, 'device', 3600), env.url);
  expect(r.code, r.stderr).toBe(0);
}

describe('device enroll: a configuration error exits at once with the reason', () => {
  it('a wrong --bootstrap-ca (an openssl CA) is tls_verification_failed naming the OpenSSL reason, and the token stays unused', async () => {
    const token = await mintToken(env, 'wrong-ca', 'device', 3600);
    const started = Date.now();
    const r = await enroll('wrong-ca', token, env.url, otherCaFile);
    expect(r.code).toBe(78);
    expect(Date.now() - started).toBeLessThan(5000); // not retried for minutes
    expect(r.stderr).toMatch(/tls_verification_failed/);
    expect(r.stderr).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED_CERT_IN_CHAIN/);
    expect(r.stderr).toMatch(/--bootstrap-ca/);
    expect(r.stdout).not.toMatch(/enroll-retry/);
    const right = await enroll('wrong-ca', token, env.url);
    expect(right.code, right.stderr).toBe(0);
  });

  it('a host under .invalid (RFC 6761) is host_not_found', async () => {
    const token = await mintToken(env, 'no-host', 'device', 3600);
    const r = await enroll('no-host', token, 'https://tlsfleet-provisioning.invalid:8443');
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/host_not_found/);
    expect(r.stderr).toMatch(/tlsfleet-provisioning\.invalid/);
    expect(r.stdout).not.toMatch(/enroll-retry/);
  });

  it('a port nobody listens on is connection_refused', async () => {
    const token = await mintToken(env, 'no-port', 'device', 3600);
    const port = await refusedPort();
    const r = await enroll('no-port', token, `https://127.0.0.1:${port}`);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/connection_refused/);
    expect(r.stderr).toMatch(/ECONNREFUSED/);
    expect(r.stdout).not.toMatch(/enroll-retry/);
  });
});

describe('device run: says why once, and comes back when the broker does', () => {
  it('refused while the broker is down: one reconnecting line per reason, then connected, with afterMs counted from the attempt', async () => {
    await enrolled('run-refused');
    const port = await refusedPort();
    const agent = runAgent(['--state', stateOf('run-refused'), '--broker', `mqtts://127.0.0.1:${port}`, '--reconnect-min', '1s', '--reconnect-max', '2s']);
    const refused = await agent.next((e) => e.event === 'reconnecting');
    expect(refused).toMatchObject({ code: 'connection_refused', reason: 'ECONNREFUSED', configuration: true, slow: false });
    // Several refusals pass before the broker starts: each is not a new line.
    await agent.next((e) => e.event === 'error' && e.code === 'connection_refused');
    const brokerFrom = Date.now();
    let broker: Service | undefined;
    try {
      broker = await startBrokerProcess(env.dataDir, ['--port', String(port)]);
      const connected = await agent.next((e) => e.event === 'connected');
      expect(agent.events.filter((e) => e.event === 'reconnecting')).toHaveLength(1);
      expect(agent.events.filter((e) => e.event === 'error')).toHaveLength(1);
      // The attempt that connected began after the broker did; the agent started well before.
      expect(connected.afterMs as number).toBeLessThanOrEqual((connected.seenAt as number) - brokerFrom);
      expect(connected.sinceStartMs as number).toBeGreaterThan(connected.afterMs as number);
    } finally {
      await broker?.stop();
    }
  });

  it('a broker whose certificate does not verify is tls_verification_failed, and the next try waits at least 15 s', async () => {
    await enrolled('run-wrong-ca');
    const server = createTlsServer({ ...otherCert }, (socket) => socket.destroy());
    server.on('tlsClientError', () => undefined);
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const agent = runAgent(['--state', stateOf('run-wrong-ca'), '--broker', `mqtts://127.0.0.1:${port}`, '--reconnect-min', '1s', '--reconnect-max', '2s']);
    const failed = await agent.next((e) => e.event === 'reconnecting');
    expect(failed).toMatchObject({ code: 'tls_verification_failed', configuration: true, slow: true });
    expect(failed.reason).toMatch(/SELF_SIGNED|UNABLE_TO|CERT_/);
    expect(failed.delayMs as number).toBeGreaterThanOrEqual(15_000);
    expect(agent.child.exitCode).toBeNull();
  });
});
