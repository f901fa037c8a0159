import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initDataDir } from '../init.js';
import { createLogger } from '../logger.js';
import { startProvisioning, type RunningProvisioning } from '../provisioning-server.js';
import { SqliteStore } from '../storage/sqlite-store.js';
import type { Store } from '../storage/store.js';

/** What the listing read from the store: rows per method, and calls of the whole-fleet readers. */
interface Reads {
  pageRows: number[];
  certificateDevices: number[];
  fullScans: string[];
}

/** The real SQLite store, counting what each listing method hands back. */
function counting(store: Store, reads: Reads): Store {
  return new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (name === 'listDevices' || name === 'listCertificates' || name === 'listAudit') {
        return (...args: unknown[]) => {
          reads.fullScans.push(String(name));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      if (name === 'listDevicePage') {
        return async (...args: unknown[]) => {
          const rows = (await (value as (...a: unknown[]) => Promise<unknown[]>).apply(target, args));
          reads.pageRows.push(rows.length);
          return rows;
        };
      }
      if (name === 'listCertificatesOf') {
        return async (ids: string[]) => {
          reads.certificateDevices.push(ids.length);
          return (value as (i: string[]) => Promise<unknown[]>).call(target, ids);
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

// Structural, not timed: a page reads at most `limit` (+1, to know whether there is more)
// device rows and the certificates of those devices only, in chunks, never the whole fleet.
describe('GET /v1/devices reads a page, not the fleet', () => {
  const DEVICES = 260;
  let dir: string;
  let running: RunningProvisioning;
  let ca: string;
  let token: string;
  const reads: Reads = { pageRows: [], certificateDevices: [], fullScans: [] };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tlsfleet-devices-route-'));
    const dataDir = join(dir, 'data');
    await initDataDir({ dataDir });
    const store = SqliteStore.open(join(dataDir, 'tlsfleet.db'));
    for (let i = 0; i < DEVICES; i++) {
      const id = `dev-${String(i).padStart(4, '0')}`;
      await store.createToken({ hash: `h${i}`, subject: id, kind: 'device', expiresAt: Date.now() + 60_000, certTtlSeconds: 60, createdAt: Date.now(), createdBy: 'test' });
      const certificate = { serial: `a${i}`, subject: id, kind: 'device' as const, spkiHash: `k${i}`, pem: 'PEM', notBefore: 0, notAfter: Date.now() + 3600_000, issuedAt: 1, issuedBy: 'test' };
      await store.recordEnrollment({ tokenHash: `h${i}`, spkiHash: `k${i}`, device: { id, kind: 'device', createdAt: 1, certTtlSeconds: 60 }, certificate });
    }
    running = await startProvisioning({ dataDir, port: 0, store: counting(store, reads), retentionMs: 0, logger: createLogger('test', 'silent') });
    ca = readFileSync(join(dataDir, 'ca-bundle.pem'), 'utf8');
    token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  });
  afterAll(async () => {
    await running?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function get(path: string): Promise<{ status: number; body: { items: Array<{ deviceId: string }>; nextCursor: string | null; devices?: unknown } }> {
    return new Promise((resolve, reject) => {
      request(`${running.url}${path}`, { ca, headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      })
        .on('error', reject)
        .end();
    });
  }

  it('reads limit + 1 device rows per page and certificates only of the page, in chunks, and never lists the fleet', async () => {
    const listed: string[] = [];
    let cursor: string | null = null;
    do {
      const before = reads.pageRows.length;
      const res = await get(`/v1/devices?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(reads.pageRows.slice(before)).toHaveLength(1);
      expect(reads.pageRows.at(-1)).toBeLessThanOrEqual(101);
      listed.push(...res.body.items.map((d) => d.deviceId));
      cursor = res.body.nextCursor;
    } while (cursor !== null);
    expect(listed).toHaveLength(DEVICES);
    expect(new Set(listed).size).toBe(DEVICES);
    expect(reads.certificateDevices.reduce((a, b) => a + b, 0)).toBe(DEVICES);
    expect(Math.max(...reads.certificateDevices)).toBeLessThanOrEqual(20);
    expect(reads.fullScans).toEqual([]);
  });

  it('answers the parameterless form with the first page only, `devices` equal to `items`', async () => {
    const res = await get('/v1/devices');
    expect(res.body.items).toHaveLength(100);
    expect(res.body.devices).toEqual(res.body.items);
    expect(res.body.nextCursor).not.toBeNull();
    expect(reads.fullScans).toEqual([]);
  });
});
