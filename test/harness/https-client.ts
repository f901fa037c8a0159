import { request as httpsRequest, type Agent } from 'node:https';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text(): string;
  json<T = any>(): T;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Trust anchors for the server certificate (the data dir's ca-bundle.pem). */
  ca: string;
  /** Client certificate chain and key, for mTLS routes. */
  cert?: string;
  key?: string;
  /** Connections to reuse (keep-alive); default none: a new connection per request. */
  agent?: Agent;
  /** Source address, e.g. another 127.0.0.x to appear as another client; default the system's choice. */
  localAddress?: string;
}

/** One HTTPS request, on a new connection unless an agent is given, verifying the server against `ca`. */
export function request(url: string, opts: RequestOptions): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
    const req = httpsRequest(
      url,
      {
        method: opts.method ?? (body ? 'POST' : 'GET'),
        headers: { ...(body ? { 'content-length': String(body.length) } : {}), ...opts.headers },
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        agent: opts.agent ?? false,
        localAddress: opts.localAddress,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const b = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: b,
            text: () => b.toString('utf8'),
            json: () => JSON.parse(b.toString('utf8')),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export function postJson(url: string, value: unknown, opts: Omit<RequestOptions, 'body'>): Promise<HttpAnswer> {
  return request(url, { ...opts, method: 'POST', headers: { 'content-type': 'application/json', ...opts.headers }, body: JSON.stringify(value) });
}
