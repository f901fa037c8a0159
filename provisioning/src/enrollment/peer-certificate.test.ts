import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from '@tlsfleet/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../storage/sqlite-store.js';
import { authorizeRenewal } from './peer-certificate.js';

describe('authorizeRenewal', () => {
  let dir: string;
  let store: SqliteStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tlsfleet-peer-'));
    store = SqliteStore.open(join(dir, 'tlsfleet.db'));
    await store.createToken({ hash: 'h1', subject: 'd1', kind: 'device', expiresAt: 9_000_000, certTtlSeconds: 60, createdAt: 1_000, createdBy: 'test' });
    await store.recordEnrollment({
      tokenHash: 'h1',
      spkiHash: 'k1',
      device: { id: 'd1', kind: 'device', createdAt: 1_000, certTtlSeconds: 60 },
      certificate: { serial: 'aa', subject: 'd1', kind: 'device', spkiHash: 'k1', pem: 'PEM', notBefore: 1_000, notAfter: 61_000, issuedAt: 1_000, issuedBy: 'token:h1' },
    });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const peer = (serial: string, notAfterMs = 61_000): PeerCertificate =>
    ({ identity: { kind: 'device', name: 'd1', trustDomain: 'tlsfleet.local' }, serial, notAfterMs, spkiDer: Buffer.alloc(0), authorityKeyId: undefined }) as PeerCertificate;

  it('grants the current certificate of a device, bound to it', async () => {
    await expect(authorizeRenewal(store, peer('aa'), 60_999)).resolves.toMatchObject({ presentedSerial: 'aa', certTtlSeconds: 60, actor: 'renewal:aa' });
  });

  it('refuses a certificate at and after its notAfter with unauthorized, whatever the handshake said', async () => {
    await expect(authorizeRenewal(store, peer('aa'), 61_000)).rejects.toMatchObject({ code: 'unauthorized', message: expect.stringMatching(/expired/) });
  });

  it('refuses a superseded certificate once its successor is older than the replay window', async () => {
    const renewal = { serial: 'bb', subject: 'd1', kind: 'device' as const, spkiHash: 'k2', pem: 'PEM', notBefore: 2_000, notAfter: 62_000, issuedAt: 2_000, issuedBy: 'renewal:aa' };
    expect(await store.recordRenewal(renewal, 'aa')).toBe('recorded');
    const longLived = peer('aa', 3_600_000);
    const within = await authorizeRenewal(store, longLived, 2_000 + 10 * 60_000);
    expect(within.supersededBy?.map((c) => c.serial)).toEqual(['bb']);
    await expect(authorizeRenewal(store, longLived, 2_001 + 10 * 60_000)).rejects.toMatchObject({ code: 'superseded' });
  });
});
