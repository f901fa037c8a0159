import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { derToPem, processCpuSeconds } from '@tlsfleet/common';
import { authorityFromDataDir, DataDir, initDataDir, SqliteStore } from '@tlsfleet/provisioning';
import { pool } from '../bounded-pool.js';
import { authorityInMemory } from './authority-in-memory.js';
import { benchIssuanceCore, makeIssuanceCoreFixture, type Rate } from './issuance-core.js';
import { costOfRefusals } from './refusal-cost.js';

// npm run bench:issuance — every figure in one run, each as a ratio to raw crypto.sign:
// the issuance core, the core plus the store (what the Authority does per enrollment), and
// full enrollments over HTTPS with a new TLS connection each. Every loop is bounded in
// count and time.

const CORE_MS = 2_000;
const AUTHORITY_MAX = 3_000;
const HTTPS_MAX = 1_500;
const HTTPS_MS = 10_000;
const HTTPS_CONCURRENCY = 16;

const loadBefore = loadavg()[0] ?? 0;
const { csrs } = await makeIssuanceCoreFixture(200);
const csrPem = csrs.map((der) => derToPem(der, 'CERTIFICATE REQUEST'));

const work = mkdtempSync(join(tmpdir(), 'tlsfleet-bench-'));
try {
  const dataDir = join(work, 'data');
  await initDataDir({ dataDir });
  const dd = DataDir.open(dataDir);
  const core = await benchIssuanceCore({ ...authorityInMemory(dd), poolSize: 500, maxMs: CORE_MS });
  const store = SqliteStore.open(dd.path('database'));
  const authority = authorityFromDataDir(dd, store);
  const mint = async (n: number, prefix: string) => {
    const tokens: string[] = [];
    for (let i = 0; i < n; i++) tokens.push((await authority.mintToken({ subject: `${prefix}-${i}`, createdBy: 'bench' })).token);
    return tokens;
  };

  // (c) The same Authority over the data dir's SQLite store: token lookup and the transactional record (WAL, file on disk).
  const authorityTokens = await mint(AUTHORITY_MAX, 'inproc');
  let done = 0;
  const started = performance.now();
  while (done < AUTHORITY_MAX && performance.now() - started < CORE_MS) {
    await authority.enroll(authorityTokens[done] as string, csrs[done % csrs.length] as Buffer);
    done++;
  }
  const withStore: Rate = rate(done, performance.now() - started);
  // Issue 19 item 2: what a refused costly CSR (made-up token, RSA-3072 with a 3000-bit e) costs.
  const refusals = await costOfRefusals(authority);
  const httpsTokens = await mint(HTTPS_MAX, 'https');
  await store.close();

  // (e) Full enrollments over HTTPS, a new TLS connection for each, against a server process.
  const server = spawn(process.execPath, [fileURLToPath(new URL('./serve.js', import.meta.url)), dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(server.stdout!.setEncoding('utf8'), 'data')) as [string];
  const url = /listening (\S+)/.exec(line)?.[1];
  if (!url) throw new Error(`server did not start: ${line}`);
  const ca = readFileSync(dd.path('caBundle'), 'utf8');
  // Reference in the same run: what a new TLS connection alone costs this server.
  const handshakes = await drive(server.pid!, HTTPS_MAX, (i) => get(`${url}/healthz`, ca).then((s) => s === 200 && i >= 0));
  const https = await drive(server.pid!, HTTPS_MAX, (i) =>
    post(`${url}/v1/enroll`, ca, JSON.stringify({ token: httpsTokens[i], csr: csrPem[i % csrPem.length] })).then((s) => s === 201),
  );
  server.kill('SIGTERM');
  await once(server, 'exit');

  const sign = core.rawSign.opsPerSecond;
  const row = (name: string, opsPerSecond: number, note = '') =>
    console.log(`${name.padEnd(52)} ${String(opsPerSecond).padStart(7)} /s  ${(opsPerSecond / sign).toFixed(3).padStart(6)} × (a)${note}`);
  console.log(`issuance benchmark — Node ${process.versions.node}, OpenSSL ${process.versions.openssl}, one thread unless said`);
  console.log(`load average before/after: ${loadBefore.toFixed(2)} / ${(loadavg()[0] ?? 0).toFixed(2)} (other work on the machine skews every figure)`);
  row('(a) crypto.sign ECDSA P-256 (reference)', sign);
  row('    crypto.verify P-256, key already imported', core.rawVerify.opsPerSecond);
  row('    @peculiar/x509 CSR verify + certificate create', core.naiveLibrary.opsPerSecond);
  row('    the same steps with asn1js + pkijs for the DER', core.libraryDer.opsPerSecond);
  row('    WebCrypto raw import of a P-256 public key', core.importWebCryptoRaw.opsPerSecond);
  row('(b) core: Authority.enroll, tokens in memory', core.core.opsPerSecond);
  row('(c) core + SQLite token lookup and record', withStore.opsPerSecond);
  const target = 4_000;
  console.log(
    `target: core (c) ≥ ${target}/s on one core — ${withStore.opsPerSecond >= target ? 'reached' : 'NOT reached'} (${withStore.opsPerSecond}/s); ` +
      `OpenSSL alone (key import + verify + sign) bounds it near ${Math.round(1 / (1 / core.importWebCryptoRaw.opsPerSecond + 1 / core.rawVerify.opsPerSecond + 1 / sign))}/s here`,
  );
  console.log(
    `refusing a costly CSR with a made-up token: ${refusals.refusedMicros.toFixed(0)} µs per request now (no verification); ` +
      `verifying it first, as before issue 19, alone cost ${refusals.verifyFirstMicros.toFixed(0)} µs`,
  );
  const perCpu = (d: Driven) => `  (${d.ok} ok, ${d.failed} failed; ${Math.round(d.ok / d.serverCpuSeconds)} per server CPU-second)`;
  row(`    TLS handshake + GET /healthz, ${HTTPS_CONCURRENCY} clients`, handshakes.rate.opsPerSecond, perCpu(handshakes));
  row(`(d) HTTPS enrollments, new TLS connection each`, https.rate.opsPerSecond, perCpu(https));
  console.log(
    `enrollment per server CPU-second is ${((https.ok / https.serverCpuSeconds) / (handshakes.ok / handshakes.serverCpuSeconds)).toFixed(2)} × a bare handshake's; ` +
      `the load generator shares the machine's ${cpus().length} cores with the server.`,
  );
  if (https.failed + handshakes.failed > 0) process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}

function rate(ops: number, ms: number): Rate {
  return { ops, ms: Math.round(ms), opsPerSecond: Math.round((ops / ms) * 1000) };
}

interface Driven {
  rate: Rate;
  ok: number;
  failed: number;
  serverCpuSeconds: number;
}

/** Runs `op` from HTTPS_CONCURRENCY clients until `max` operations or HTTPS_MS, reading the server's CPU time around it. */
async function drive(pid: number, max: number, op: (i: number) => Promise<boolean>): Promise<Driven> {
  const cpuBefore = processCpuSeconds(pid);
  const { ok, failed, ms } = await pool(HTTPS_CONCURRENCY, max, HTTPS_MS, op);
  return { rate: rate(ok, ms), ok, failed, serverCpuSeconds: processCpuSeconds(pid) - cpuBefore };
}

function get(url: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

function post(url: string, ca: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', ca, agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}
