import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { authorityFromDataDir } from './data-dir-authority.js';
import { DataDir } from './data-dir.js';
import { initDataDir } from './init.js';
import { createLogger } from './logger.js';
import { SqliteStore } from './storage/sqlite-store.js';
import type { Authority } from './authority/authority.js';
import { makeTestCsr } from './authority/csr.fixture.js';
import { CrlPublisher } from './crl-publisher.js';

function crlText(dataDir: DataDir): { status: number | null; text: string } {
  const r = spawnSync('openssl', ['crl', '-inform', 'DER', '-in', dataDir.path('crl'), '-CAfile', dataDir.path('intermediateCert'), '-noout', '-verify', '-text'], { encoding: 'utf8' });
  return { status: r.status, text: `${r.stdout}${r.stderr}` };
}

function crlNumber(text: string): bigint {
  const m = /X509v3 CRL Number:\s*\n\s*(\S+)/.exec(text);
  if (!m?.[1]) throw new Error(`no CRL number in:\n${text}`);
  return BigInt(m[1]); // openssl prints small numbers in decimal, large ones as 0x…
}

describe('CrlPublisher', () => {
  let tmp: string;
  let dataDir: DataDir;
  let store: SqliteStore;
  let authority: Authority;
  let publisher: CrlPublisher;

  beforeEach(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'tlsfleet-crl-publisher-'));
    await initDataDir({ dataDir: join(tmp, 'data'), trustDomain: 'fleet.test' });
    dataDir = DataDir.open(join(tmp, 'data'));
    store = SqliteStore.open(dataDir.path('database'));
    authority = authorityFromDataDir(dataDir, store);
    publisher = new CrlPublisher({ authority, path: dataDir.path('crl'), logger: createLogger('test', 'silent') });
  });

  afterEach(async () => {
    await publisher.stop();
    await store.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  async function enroll(deviceId: string): Promise<string> {
    const { token } = await authority.mintToken({ subject: deviceId, createdBy: 'test' });
    return (await authority.enroll(token, makeTestCsr().der)).serial;
  }

  it('finds the empty CRL that init left, numbered 0 and signed by the intermediate', () => {
    const { status, text } = crlText(dataDir);
    expect(status, text).toBe(0);
    expect(text).toContain('verify OK');
    expect(crlNumber(text)).toBe(0n);
    expect(text).toContain('No Revoked Certificates');
  });

  it('replaces the file after a revocation with a higher-numbered CRL listing the serial, mode 0644', async () => {
    const serial = await enroll('sensor-1');
    await publisher.publish();
    const first = crlText(dataDir);
    expect(first.text).toContain('verify OK');

    await authority.revoke('sensor-1', 'test');
    await publisher.publish();
    const second = crlText(dataDir);
    expect(second.status, second.text).toBe(0);
    expect(second.text).toContain('verify OK');
    expect(crlNumber(second.text)).toBeGreaterThan(crlNumber(first.text));
    expect(second.text.replace(/[:\s]/g, '').toLowerCase()).toContain(`serialnumber${serial}`);
    expect(statSync(dataDir.path('crl')).mode & 0o777).toBe(0o644);
    // No temporary file left beside it.
    expect(readdirSync(dataDir.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('does not rewrite the file while the CRL is unchanged', async () => {
    await publisher.publish();
    const before = statSync(dataDir.path('crl'), { bigint: true });
    const bytes = readFileSync(dataDir.path('crl'));
    await publisher.publish();
    await publisher.publish();
    const after = statSync(dataDir.path('crl'), { bigint: true });
    expect([after.ino, after.mtimeNs]).toEqual([before.ino, before.mtimeNs]);
    expect(readFileSync(dataDir.path('crl'))).toEqual(bytes);
  });

  it('sees a revocation recorded by another process through the shared store', async () => {
    await enroll('sensor-2');
    await publisher.publish();
    // A second authority over the same SQLite file, as `tlsfleet revoke` opens it.
    const other = SqliteStore.open(dataDir.path('database'));
    try {
      await authorityFromDataDir(dataDir, other).revoke('sensor-2', 'cli:test');
    } finally {
      await other.close();
    }
    const before = crlNumber(crlText(dataDir).text);
    await publisher.publish();
    expect(crlNumber(crlText(dataDir).text)).toBeGreaterThan(before);
  });

  it('puts its CRL back when another writer left an older one in the file', async () => {
    await enroll('sensor-3');
    await publisher.publish();
    const older = readFileSync(dataDir.path('crl'));
    await authority.revoke('sensor-3', 'test');
    await publisher.publish();
    const current = readFileSync(dataDir.path('crl'));
    // `tlsfleet revoke` and the service racing: the loser's rename lands last.
    writeFileSync(dataDir.path('crl'), older);
    await publisher.publish();
    expect(readFileSync(dataDir.path('crl'))).toEqual(current);
  });

  it('rewrites a file that is not a CRL at all', async () => {
    await publisher.publish();
    writeFileSync(dataDir.path('crl'), 'garbage');
    await publisher.publish();
    expect(crlText(dataDir).text).toContain('verify OK');
  });

  it('runs concurrent calls one at a time and rejects when the file cannot be written', async () => {
    await Promise.all([publisher.publish(), publisher.publish(), publisher.publish()]);
    expect(crlText(dataDir).text).toContain('verify OK');
    const broken = new CrlPublisher({ authority, path: join(tmp, 'no-such-dir', 'crl.der'), logger: createLogger('test', 'silent') });
    await expect(broken.publish()).rejects.toThrow(/ENOENT/);
  });

  it('publishes on its timer and keeps going after a failure', async () => {
    const logged: string[] = [];
    const logger = createLogger('test', 'silent');
    logger.error = ((_obj: unknown, msg: string) => void logged.push(msg)) as typeof logger.error;
    const broken = new CrlPublisher({ authority, path: join(tmp, 'no-such-dir', 'crl.der'), logger });
    broken.start(10);
    await expect.poll(() => logged.length).toBeGreaterThan(0);
    await broken.stop();
    // Logged once per outage, not once per tick.
    expect(logged).toEqual(['cannot publish the CRL file']);

    await enroll('sensor-4');
    const before = crlNumber(crlText(dataDir).text);
    publisher.start(10);
    await authority.revoke('sensor-4', 'test');
    await expect.poll(() => crlNumber(crlText(dataDir).text)).toBeGreaterThan(before);
  });
});
