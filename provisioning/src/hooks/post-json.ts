import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { isIP } from 'node:net';

/** What an outgoing POST ended with; `failure` says why it gave no usable answer. */
export type PostOutcome =
  | { readonly ok: true; readonly status: number; readonly body: Buffer }
  | { readonly ok: false; readonly failure: 'timeout' | 'connection' | 'too_large'; readonly detail: string };

export interface HookTarget {
  readonly url: URL;
  /** Agent with its own connection pool and, for https, the trust anchors. */
  readonly agent: HttpAgent;
}

/** Largest answer body read from a hook or webhook receiver, bytes; more is a failure. */
export const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * Checks a hook or webhook URL and makes its agent. https verifies the receiver against `ca`
 * (PEM, replacing the system CAs) or the system CAs; plain http only to a loopback receiver
 * (a sidecar), since the body and the answer would otherwise cross a network unprotected.
 */
export function hookTarget(raw: string, flag: string, ca?: string): HookTarget {
  if (!URL.canParse(raw)) throw new RangeError(`${flag} takes an http(s) URL, not ${JSON.stringify(raw)}`);
  const url = new URL(raw);
  if (url.username !== '' || url.password !== '') throw new RangeError(`${flag}: credentials in the URL are not accepted`);
  if (url.protocol === 'https:') return { url, agent: new HttpsAgent({ keepAlive: true, maxSockets: 64, ca, minVersion: 'TLSv1.2' }) };
  if (url.protocol === 'http:') {
    if (!isLoopback(url.hostname)) throw new RangeError(`${flag}: plain http is allowed only to a loopback address (127.0.0.0/8, [::1], localhost); use https`);
    return { url, agent: new HttpAgent({ keepAlive: true, maxSockets: 64 }) };
  }
  throw new RangeError(`${flag} takes an http(s) URL, not ${url.protocol}`);
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * POSTs `body` as JSON, reading at most MAX_ANSWER_BYTES of the answer, everything within
 * `timeoutMs` (connect, TLS, answer). Never rejects.
 */
export function postJson(target: HookTarget, body: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<PostOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome: PostOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const send = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      target.url,
      {
        method: 'POST',
        agent: target.agent,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'user-agent': 'tlsfleet-provisioning', ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) {
            finish({ ok: false, failure: 'too_large', detail: `answer over ${MAX_ANSWER_BYTES} bytes` });
            req.destroy();
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => finish({ ok: true, status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', (err) => finish({ ok: false, failure: 'connection', detail: err.message }));
      },
    );
    const timer = setTimeout(() => {
      finish({ ok: false, failure: 'timeout', detail: `no answer within ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) => finish({ ok: false, failure: 'connection', detail: err.message }));
    req.end(body);
  });
}
