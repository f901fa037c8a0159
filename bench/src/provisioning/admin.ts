import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { DataDir, initDataDir, SqliteStore } from '@tlsfleet/provisioning';

// npm run bench:admin — issue 20: /readyz latency while an admin pages through 20,000 devices
// × 10 certificates over real HTTPS from a real SQLite store, at limit 100 and 1000. The target
// is /readyz under 50 ms throughout. Bounded: one pass per page size, at most PAGE_PASS_MS each.

const DEVICES = 20_000;
const CERTIFICATES_PER_DEVICE = 10;
const READYZ_EVERY_MS = 5;
const PAGE_PASS_MS = 120_000;
const DAY = 86_400_000;

// The pager runs in a worker thread: parsing a 3 MB page in the thread that times /readyz
// would stall the prober itself and blame the server for it.
if (isMainThread) await main();
else await pager();

async function pager(): Promise<void> {
  const { url, ca, adminToken, limit } = workerData as { url: string; ca: string; adminToken: string; limit: number };
  const pages: number[] = [];
  const devices = await listAll(url, ca, adminToken, limit, pages);
  parentPort?.postMessage({ devices, pages });
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'tlsfleet-bench-admin-'));
  try {
    const dataDir = join(work, 'data');
    await initDataDir({ dataDir });
    const dd = DataDir.open(dataDir);
    // Migrated by the store, then seeded with SQL in one transaction: 200,000 rows through the
    // API would take minutes and measure issuance, not listing. Rows have production shapes,
    // including a PEM of a real device certificate's size.
    await SqliteStore.open(dd.path('database')).close();
    const seededMs = seed(dd.path('database'));
    const ca = readFileSync(dd.path('caBundle'), 'utf8');
    const adminToken = readFileSync(dd.path('adminToken'), 'utf8').trim();

    const server = spawn(process.execPath, [fileURLToPath(new URL('./serve.js', import.meta.url)), dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(server.stdout!.setEncoding('utf8'), 'data')) as [string];
    const url = /listening (\S+)/.exec(line)?.[1];
    if (!url) throw new Error(`server did not start: ${line}`);

    const idle = await readyzWhile(url, ca, sleep(2_000));
    const passes = [];
    for (const limit of [100, 1000]) {
      const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { url, ca, adminToken, limit } });
      const listing = once(worker, 'message') as Promise<[{ devices: number; pages: number[] }]>;
      const readyz = await readyzWhile(url, ca, listing);
      const [{ devices, pages }] = await listing;
      passes.push({ limit, devices, pages, readyz });
    }
    server.kill('SIGTERM');
    await once(server, 'exit');

    console.log(`admin listing benchmark — Node ${process.versions.node}; ${DEVICES} devices × ${CERTIFICATES_PER_DEVICE} certificates in SQLite (seeded in ${seededMs} ms)`);
    console.log(`load average after: ${(loadavg()[0] ?? 0).toFixed(2)} (other work on the machine skews every figure)`);
    console.log(`/readyz idle                         p50 ${ms(idle, 0.5)}  p99 ${ms(idle, 0.99)}  max ${ms(idle, 1)}  (${idle.length} probes)`);
    for (const p of passes) {
      console.log(`limit=${String(p.limit).padEnd(5)} ${p.pages.length} pages, ${p.devices} devices listed`);
      console.log(`  page answer                        p50 ${ms(p.pages, 0.5)}  p99 ${ms(p.pages, 0.99)}  max ${ms(p.pages, 1)}`);
      console.log(`  /readyz while listing              p50 ${ms(p.readyz, 0.5)}  p99 ${ms(p.readyz, 0.99)}  max ${ms(p.readyz, 1)}  (${p.readyz.length} probes; target < 50 ms)`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function seed(file: string): number {
  const started = performance.now();
  const db = new Database(file);
  const now = Date.now();
  const pem = `-----BEGIN CERTIFICATE-----\n${randomBytes(520).toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;
  const device = db.prepare('INSERT INTO devices (id, kind, created_at, cert_ttl_seconds, current_serial) VALUES (?, ?, ?, ?, ?)');
  const cert = db.prepare(
    `INSERT INTO certificates (serial, subject, kind, spki_hash, pem, not_before, not_after, issued_at, issued_by, revoked_at, revoked_by, renewed_from)
     VALUES (?, ?, 'device', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  db.transaction(() => {
    for (let d = 0; d < DEVICES; d++) {
      const id = `bench-${String(d).padStart(6, '0')}`;
      const serials = Array.from({ length: CERTIFICATES_PER_DEVICE }, () => randomBytes(16).toString('hex').replace(/^0+/, ''));
      device.run(id, 'device', now - 70 * DAY, 7 * 86_400, serials.at(-1));
      serials.forEach((serial, n) => {
        const issuedAt = now - (CERTIFICATES_PER_DEVICE - n) * 7 * DAY + DAY;
        // Every 50th device had its current certificate revoked.
        const revoked = d % 50 === 0 && n === CERTIFICATES_PER_DEVICE - 1;
        cert.run(serial, id, randomBytes(32).toString('hex'), pem, issuedAt - 300_000, issuedAt + 7 * DAY, issuedAt, n === 0 ? 'token:bench' : `renewal:${serials[n - 1]}`,
          revoked ? now - DAY : null, revoked ? 'bench' : null, n === 0 ? null : serials[n - 1]);
      });
    }
  })();
  db.close();
  return Math.round(performance.now() - started);
}

/** Pages through GET /v1/devices on one keep-alive connection; records each page's answer time. */
async function listAll(base: string, ca: string, token: string, limit: number, pages: number[]): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca });
  let cursor: string | null = null;
  let devices = 0;
  const deadline = performance.now() + PAGE_PASS_MS;
  do {
    const t0 = performance.now();
    const body = JSON.parse(await get(`${base}/v1/devices?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, agent, { authorization: `Bearer ${token}` })) as { items: unknown[]; nextCursor: string | null };
    pages.push(performance.now() - t0);
    devices += body.items.length;
    cursor = body.nextCursor;
  } while (cursor !== null && performance.now() < deadline);
  agent.destroy();
  return devices;
}

/** GET /readyz every READYZ_EVERY_MS on its own keep-alive connection until `until` settles; each answer's time, ms. */
async function readyzWhile(base: string, ca: string, until: Promise<unknown>): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca });
  let done = false;
  void until.finally(() => (done = true));
  const times: number[] = [];
  while (!done) {
    const t0 = performance.now();
    await get(`${base}/readyz`, agent, {});
    times.push(performance.now() - t0);
    await sleep(READYZ_EVERY_MS);
  }
  agent.destroy();
  return times;
}

function get(url: string, agent: Agent, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, { agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`${url}: ${res.statusCode}`))));
    })
      .on('error', reject)
      .end();
  });
}

function ms(samples: number[], q: number): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const v = sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return `${v.toFixed(1).padStart(6)} ms`;
}

function sleep(msec: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msec));
}
