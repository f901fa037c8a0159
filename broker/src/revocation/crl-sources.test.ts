import { once } from 'node:events';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pollCrlUrl, watchCrlFile } from './crl-sources.js';
import { OpensslPki } from './openssl-crl.fixture.js';
import { RevocationList } from './revocation-list.js';

let pki: OpensslPki;
let crlA: Buffer; // number 1: aa
let crlB: Buffer; // number 2: aa, bb
beforeAll(() => {
  pki = OpensslPki.create();
  crlA = pki.crl({ number: 1n, revoked: ['AA'] });
  crlB = pki.crl({ number: 2n, revoked: ['AA', 'BB'] });
});
afterAll(() => pki?.remove());

let list: RevocationList;
let errors: Error[];
let stops: Array<() => void>;
beforeEach(() => {
  list = new RevocationList({ issuers: pki.issuers() });
  errors = [];
  stops = [];
});
afterEach(() => {
  for (const stop of stops) stop();
  list.close();
});

const onError = (err: Error) => void errors.push(err);
const nextUpdate = () => once(list, 'update') as Promise<[ReadonlySet<string>]>;

describe('watchCrlFile', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tlsfleet-crl-file-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** As the provisioning publisher writes it: a temporary file renamed over the old one. */
  function replace(der: Buffer): void {
    const tmp = join(dir, `.crl.der.${Math.random()}.tmp`);
    writeFileSync(tmp, der);
    renameSync(tmp, join(dir, 'crl.der'));
  }

  it('survives the file being absent, then loads it when it appears', async () => {
    stops.push(watchCrlFile(join(dir, 'crl.der'), list, { intervalMs: 10, onError }));
    await expect.poll(() => errors.length).toBe(1);
    expect(errors[0]?.message).toMatch(/absent/);
    expect(list.state()).toBe('missing');
    const updated = nextUpdate();
    replace(crlA);
    expect((await updated)[0]).toEqual(new Set(['aa']));
  });

  it('picks up a file replaced by rename', async () => {
    replace(crlA);
    stops.push(watchCrlFile(join(dir, 'crl.der'), list, { intervalMs: 10, onError }));
    await nextUpdate();
    const updated = nextUpdate();
    replace(crlB);
    expect((await updated)[0]).toEqual(new Set(['bb']));
    expect(list.isRevoked('bb')).toBe(true);
    expect(errors).toEqual([]);
  });

  it('keeps the last good CRL when the file turns bad, and recovers when it is fixed', async () => {
    replace(crlA);
    stops.push(watchCrlFile(join(dir, 'crl.der'), list, { intervalMs: 10, onError }));
    await nextUpdate();
    const rejected = once(list, 'rejected');
    replace(Buffer.from('garbage'));
    await rejected;
    expect(list.isRevoked('aa')).toBe(true);
    const updated = nextUpdate();
    replace(crlB);
    await updated;
    expect(list.current?.number).toBe(2n);
  });

  it('stops looking once stopped', async () => {
    const stop = watchCrlFile(join(dir, 'crl.der'), list, { intervalMs: 10 });
    stop();
    replace(crlA);
    await new Promise((r) => setTimeout(r, 60));
    expect(list.state()).toBe('missing');
  });
});

describe('pollCrlUrl', () => {
  let server: Server;
  let url: string;
  let served: { der: Buffer; lastModified: string } | undefined;
  let requests: Array<{ headers: IncomingHttpHeaders; status: number }>;
  let silent = false;

  beforeEach(async () => {
    requests = [];
    served = undefined;
    silent = false;
    server = createServer({ ...pki.serverCredentials(), minVersion: 'TLSv1.2' }, (req, res) => {
      if (silent) return; // never answers
      if (!served) {
        res.writeHead(503).end();
        requests.push({ headers: req.headers, status: 503 });
        return;
      }
      // As express's `fresh` judges it for provisioning: not modified when Last-Modified ≤ If-Modified-Since.
      const since = Date.parse(req.headers['if-modified-since'] ?? '');
      const status = since >= Date.parse(served.lastModified) ? 304 : 200;
      requests.push({ headers: req.headers, status });
      res.writeHead(status, { 'content-type': 'application/pkix-crl', 'last-modified': served.lastModified });
      res.end(status === 200 ? served.der : undefined);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v1/crl`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const longAgo = () => new Date(Date.now() - 3600_000).toUTCString();

  it('loads the CRL, asks If-Modified-Since once that is safe, and treats 304 as a no-op', async () => {
    served = { der: crlA, lastModified: longAgo() };
    const updated = nextUpdate();
    stops.push(pollCrlUrl(url, list, { intervalMs: 20, ca: pki.bundlePem, onError }));
    expect((await updated)[0]).toEqual(new Set(['aa']));
    await expect.poll(() => requests.filter((r) => r.status === 304).length).toBeGreaterThan(1);
    expect(requests[1]?.headers['if-modified-since']).toBe(served.lastModified);
    expect(list.current?.number).toBe(1n);
    expect(errors).toEqual([]);

    const next = nextUpdate();
    served = { der: crlB, lastModified: new Date(Date.now() - 60_000).toUTCString() };
    expect((await next)[0]).toEqual(new Set(['bb']));
  });

  it('fetches unconditionally while a newer CRL could still carry the same Last-Modified second', async () => {
    const sameSecond = new Date().toUTCString();
    served = { der: crlA, lastModified: sameSecond };
    stops.push(pollCrlUrl(url, list, { intervalMs: 20, ca: pki.bundlePem, onError }));
    await nextUpdate();
    // A second CRL issued within the same second: If-Modified-Since would hide it.
    served = { der: crlB, lastModified: sameSecond };
    await expect.poll(() => list.current?.number, { timeout: 3000 }).toBe(2n);
    expect(requests.filter((r) => r.headers['if-modified-since'] !== undefined && r.status === 304)).toEqual([]);
  });

  it('reports an error status once while it repeats, then recovers', async () => {
    stops.push(pollCrlUrl(url, list, { intervalMs: 10, ca: pki.bundlePem, onError }));
    await expect.poll(() => requests.length).toBeGreaterThan(3);
    expect(errors.map((e) => e.message)).toEqual([`GET ${url} answered 503`]);
    const updated = nextUpdate();
    served = { der: crlA, lastModified: longAgo() };
    await updated;
  });

  it('refuses a server whose certificate does not chain to the trust bundle', async () => {
    served = { der: crlA, lastModified: longAgo() };
    stops.push(pollCrlUrl(url, list, { intervalMs: 10, ca: pki.pem('impostor'), onError }));
    await expect.poll(() => errors.length).toBe(1);
    expect(requests).toEqual([]);
    expect(list.state()).toBe('missing');
  });

  it('gives up on a request after timeoutMs and says so', async () => {
    silent = true;
    stops.push(pollCrlUrl(url, list, { intervalMs: 10, timeoutMs: 50, ca: pki.bundlePem, onError }));
    await expect.poll(() => errors.length).toBe(1);
    expect(errors[0]?.message).toMatch(/within 50 ms/);
  });

  it('reports an unreachable server without throwing', async () => {
    const closedUrl = url;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    server = createServer(); // for afterEach
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    stops.push(pollCrlUrl(closedUrl, list, { intervalMs: 10, ca: pki.bundlePem, onError }));
    await expect.poll(() => errors.length).toBe(1);
    expect(errors[0]?.message).toMatch(/ECONNREFUSED/);
  });

  it('refuses a URL that is not https at once', () => {
    expect(() => pollCrlUrl('http://127.0.0.1:1/v1/crl', list, { ca: pki.bundlePem })).toThrow(/https/);
  });
});
