import { readFile, stat } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, get } from 'node:https';

/** What a source feeds: RevocationList.load verifies and applies rollback protection. */
export interface CrlSink {
  load(der: Buffer): unknown;
}

export interface CrlSourceOptions {
  /** How often to look, ms. */
  intervalMs?: number;
  /** Told of each failure (once while the same failure repeats); the source keeps going. Default: ignored. */
  onError?: (err: Error) => void;
}

export interface CrlUrlOptions extends CrlSourceOptions {
  /** PEM trust bundle the server certificate must chain to. */
  ca: string;
  /** Bound on one request, ms; default 5 s. */
  timeoutMs?: number;
  /** Largest CRL accepted, bytes; default 32 MiB. */
  maxBytes?: number;
}

/**
 * Loads the CRL file whenever its inode, size or mtime changes (default: looks every 1 s).
 * Polls with stat rather than fs.watch, so the file may be absent for a while and may be
 * replaced by rename, as the provisioning publisher does. Returns stop.
 */
export function watchCrlFile(path: string, list: CrlSink, opts: CrlSourceOptions = {}): () => void {
  const report = reporter(opts.onError);
  let seen: string | undefined;
  let busy = false;
  let stopped = false;
  const check = async () => {
    if (busy || stopped) return;
    busy = true;
    try {
      const s = await stat(path, { bigint: true }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      const stamp = s === undefined ? 'absent' : `${s.ino}:${s.size}:${s.mtimeNs}`;
      if (stamp === seen) return;
      if (s === undefined) {
        seen = stamp;
        report(new Error(`CRL file ${path} is absent; the last CRL loaded stays in force`));
        return;
      }
      const der = await readFile(path);
      if (stopped) return;
      list.load(der);
      seen = stamp;
      report(undefined);
    } catch (err) {
      report(asError(err)); // seen stays: retried on the next tick
    } finally {
      busy = false;
    }
  };
  void check();
  const timer = setInterval(() => void check(), opts.intervalMs ?? 1000).unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

/**
 * Fetches the CRL from provisioning's GET /v1/crl over HTTPS (TLS 1.2+, server verified
 * against `ca`) every `intervalMs` (default 2 s), conditionally once that is safe, and loads
 * it when the body changed. Failures go to onError, never thrown. Returns stop.
 */
export function pollCrlUrl(url: string, list: CrlSink, opts: CrlUrlOptions): () => void {
  const target = new URL(url);
  if (target.protocol !== 'https:') throw new TypeError(`CRL URL must be https: ${url}`);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const maxBytes = opts.maxBytes ?? 32 * 1024 * 1024;
  const report = reporter(opts.onError);
  const agent = new Agent({ ca: opts.ca, minVersion: 'TLSv1.2', keepAlive: true, maxSockets: 1 });
  let validators: Record<string, string> = {};
  let body: Buffer | undefined;
  let inFlight: AbortController | undefined;
  let stopped = false;

  const poll = async () => {
    if (inFlight || stopped) return;
    const abort = new AbortController();
    inFlight = abort;
    try {
      const answer = await fetchOnce(target, { agent, headers: validators, signal: abort.signal, timeoutMs, maxBytes });
      if (answer.status === 304) return report(undefined); // RFC 9110 §15.4.5: what we hold is current
      if (answer.status !== 200) throw new Error(`GET ${url} answered ${answer.status}`);
      validators = conditionalHeaders(answer.headers);
      if (body === undefined || !answer.body.equals(body)) list.load(answer.body);
      body = answer.body;
      report(undefined);
    } catch (err) {
      if (!stopped) report(asError(err));
    } finally {
      inFlight = undefined;
    }
  };
  void poll();
  const timer = setInterval(() => void poll(), opts.intervalMs ?? 2000).unref();
  return () => {
    stopped = true;
    clearInterval(timer);
    inFlight?.abort();
    agent.destroy();
  };
}

/**
 * Validators for the next request. Provisioning's Last-Modified is the CRL's thisUpdate,
 * in whole seconds (RFC 9110 §8.8.2), so a second CRL issued within the same second would
 * look unmodified: If-Modified-Since is sent only when the server's Date shows that second
 * had passed 2 s before it answered. An ETag, when the server sends one, is exact.
 */
function conditionalHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers.etag) out['if-none-match'] = headers.etag;
  const lastModified = headers['last-modified'];
  const modifiedAt = Date.parse(lastModified ?? '');
  const servedAt = Date.parse(headers.date ?? '');
  if (lastModified && servedAt - modifiedAt >= 2000) out['if-modified-since'] = lastModified;
  return out;
}

interface FetchParams {
  agent: Agent;
  headers: Record<string, string>;
  signal: AbortSignal;
  timeoutMs: number;
  maxBytes: number;
}

function fetchOnce(url: URL, p: FetchParams): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: p.agent, headers: { accept: 'application/pkix-crl', ...p.headers }, signal: p.signal }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > p.maxBytes) req.destroy(new Error(`CRL from ${url.href} is larger than ${p.maxBytes} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
      res.on('close', () => res.complete || reject(new Error(`GET ${url.href}: connection closed mid-answer`)));
    });
    const timer = setTimeout(() => req.destroy(new Error(`GET ${url.href}: no complete answer within ${p.timeoutMs} ms`)), p.timeoutMs);
    req.on('error', reject);
    req.on('close', () => clearTimeout(timer));
  });
}

/** Passes a failure on once while it repeats (every poll would otherwise log it); undefined marks a success. */
function reporter(onError: ((err: Error) => void) | undefined): (err: Error | undefined) => void {
  let last: string | undefined;
  return (err) => {
    if (err === undefined || err.message === last) {
      last = err?.message;
      return;
    }
    last = err.message;
    try {
      onError?.(err);
    } catch {
      // a logger that throws must not stop the source
    }
  };
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
