import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../storage/sqlite-store.js';
import { eventBody, retryDelay, signature } from './deliverer.js';
import type { WebhookOutbox } from './outbox.js';

describe('the webhook outbox in SQLite', () => {
  let dir: string;
  let store: SqliteStore;
  let db: Database.Database;
  let outbox: WebhookOutbox;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tlsfleet-outbox-'));
    store = SqliteStore.open(join(dir, 'db.sqlite'));
    db = new Database(join(dir, 'db.sqlite'));
    outbox = store.outbox();
  });
  afterEach(async () => {
    db.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const audit = (action: string, subject: string, serial: string | null, at: number, notAfter: number | null = null) =>
    db.prepare('INSERT INTO audit (at, actor, action, subject, serial, not_after) VALUES (?, ?, ?, ?, ?, ?)').run(at, 'test', action, subject, serial, notAfter);
  const A = 'http://127.0.0.1:9/a';
  const B = 'http://127.0.0.1:9/b';

  it('turns issuances, renewals and certificate revocations into events, not tokens or token-only revocations', async () => {
    audit('token', 'd1', null, 1);
    audit('issue', 'd1', 'aa', 2, 1000);
    audit('renew', 'd1', 'bb', 3, 2000);
    audit('revoke', 'd1', null, 4);
    audit('revoke', 'd1', 'bb', 5);
    expect(await outbox.fanOut([A], 10, 100)).toBe(3);
    const listed = await outbox.list('pending', 10);
    expect(listed.map((d) => [d.event.type, d.event.serial, d.event.notAfter, d.event.at])).toEqual([
      ['enrolled', 'aa', 1000, 2],
      ['renewed', 'bb', 2000, 3],
      ['revoked', 'bb', undefined, 5],
    ]);
    expect(new Set(listed.map((d) => d.event.id)).size).toBe(3);
    expect(listed[0]!.event.id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('leases only the oldest undelivered event per receiver and device, never twice, and keeps a failed one first', async () => {
    audit('issue', 'd1', '01', 1, 9);
    audit('renew', 'd1', '02', 2, 9);
    audit('issue', 'd2', '03', 3, 9);
    await outbox.fanOut([A, B], 10, 100);
    const first = await outbox.claim('me', 10, 100, 50);
    expect(first.map((d) => `${d.endpoint.slice(-1)}:${d.event.serial}`).sort()).toEqual(['a:01', 'a:03', 'b:01', 'b:03']);
    expect(await outbox.claim('other', 10, 100, 50)).toEqual([]);
    await outbox.failed(1, A, 'me', 11, 50, 503, 'HTTP 503');
    await outbox.delivered(1, B, 'me', 11);
    // B's next event of d1 is due; A's d1 waits for its retry at 50 and keeps 02 behind it.
    expect((await outbox.claim('me', 20, 120, 50)).map((d) => `${d.endpoint.slice(-1)}:${d.event.serial}`)).toEqual(['b:02']);
    expect((await outbox.list('failing', 10)).map((d) => [d.event.serial, d.attempts, d.lastStatus, d.nextAttemptAt])).toEqual([['01', 1, 503, 50]]);
    const retried = await outbox.claim('me', 50, 150, 50);
    expect(retried.map((d) => [d.event.serial, d.attempts])).toEqual([['01', 2]]);
    // A lease that ran out may be taken over.
    expect((await outbox.claim('other', 200, 300, 50)).length).toBeGreaterThan(0);
    expect(await outbox.backlog()).toEqual({ pending: 5, failing: 1 });
  });

  it('drops events when no receiver is configured, and prunes delivered ones past retention', async () => {
    audit('issue', 'd1', '01', 1, 9);
    expect(await outbox.fanOut([], 10, 100)).toBe(1);
    expect(await outbox.fanOut([A], 10, 100)).toBe(0);
    audit('issue', 'd2', '02', 2, 9);
    await outbox.fanOut([A], 10, 100);
    const [d] = await outbox.claim('me', 10, 100, 10);
    await outbox.delivered(d!.event.seq, A, 'me', 20);
    expect(await outbox.prune(15, 100)).toBe(1); // only the dropped event: the delivery is newer than the cutoff
    expect(await outbox.prune(30, 100)).toBe(2);
    expect(await outbox.list('delivered', 10)).toEqual([]);
  });
});

describe('webhook bodies and retries', () => {
  it('sends exactly the stable fields, notAfter only when there is one, and signs the raw body', () => {
    const body = eventBody({ seq: 1, id: 'x', type: 'revoked', device: 'd', serial: 'ab', notAfter: undefined, at: 0 });
    expect(body).toBe('{"id":"x","type":"revoked","device":"d","serial":"ab","at":"1970-01-01T00:00:00.000Z"}');
    expect(signature('k', body)).toMatch(/^sha256=[0-9a-f]{64}$/);
  });

  it('backs off exponentially up to the cap, with up to half taken off at random', () => {
    expect([1, 2, 3, 4, 10, 40].map((n) => retryDelay(n, 1000, 60_000, () => 1))).toEqual([1000, 2000, 4000, 8000, 60_000, 60_000]);
    expect([1, 2, 10].map((n) => retryDelay(n, 1000, 60_000, () => 0))).toEqual([500, 1000, 30_000]);
  });
});
