import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditPageQuery, devicePageQuery, forSqlite, PRUNABLE_CERTIFICATES, PRUNABLE_TOKENS, type Query } from './admin-queries.js';
import { SqliteStore } from './sqlite-store.js';

// Structural guarantees of the admin queries on the real, migrated schema: a page walks an
// index from the cursor and stops at LIMIT (no full scan, no sort of the whole table), so its
// cost is bounded by the page, not by the fleet.
describe('admin queries on the SQLite schema', () => {
  let dir: string;
  let db: Database.Database;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tlsfleet-plan-'));
    await SqliteStore.open(join(dir, 'tlsfleet.db')).close();
    db = new Database(join(dir, 'tlsfleet.db'), { readonly: true });
  });
  afterAll(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function plan(q: Query): string[] {
    const { text, params } = forSqlite(q);
    return (db.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail);
  }

  const variants = [{}, { status: 'active' as const }, { status: 'revoked' as const }, { status: 'expired' as const }, { expiringBefore: 5 }];
  it.each(variants)('a device page %j seeks devices by primary key from the cursor and joins certificates by primary key, unsorted', (filter) => {
    const steps = plan(devicePageQuery({ after: 'm', limit: 100, now: 1, ...filter }));
    expect(steps.find((s) => s.startsWith('SEARCH d'))).toMatch(/USING INDEX sqlite_autoindex_devices_1 \(id>\?\)/);
    // Without a filter SQLite drops the unused LEFT JOIN altogether.
    const join = steps.find((s) => s.includes(' c '));
    if (Object.keys(filter).length > 0) expect(join).toMatch(/SEARCH c USING INDEX sqlite_autoindex_certificates_1 \(serial=\?\)/);
    else expect(join).toBeUndefined();
    expect(steps.join('\n')).not.toMatch(/SCAN|TEMP B-TREE/);
  });

  it('an audit page seeks the audit by record id, with or without a device', () => {
    for (const q of [auditPageQuery({ afterId: 5, limit: 10 }), auditPageQuery({ afterId: 5, limit: 10, deviceId: 'd' })]) {
      expect(plan(q).join('\n')).not.toMatch(/SCAN audit|TEMP B-TREE/);
    }
  });

  it('retention finds its batches through indexes, not by scanning every row', () => {
    expect(plan({ text: PRUNABLE_CERTIFICATES, params: [1, 10] }).join('\n')).toMatch(/SEARCH c USING INDEX certificates_not_after \(not_after<\?\)/);
    expect(plan({ text: PRUNABLE_TOKENS, params: [1, 10] }).join('\n')).not.toMatch(/SCAN tokens/);
  });

  it('numbers repeated parameters for SQLite in order', () => {
    expect(forSqlite({ text: 'a $1 b $2 c $1', params: ['x', 'y'] })).toEqual({ text: 'a ? b ? c ?', params: ['x', 'y', 'x'] });
  });
});
