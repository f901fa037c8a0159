import { once } from 'node:events';
import { connect, type TLSSocket } from 'node:tls';

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface PartialUpload {
  readonly socket: TLSSocket;
  /**
   * Sends the rest of the body, then `pipelined` (raw further requests on the same
   * connection, if any); resolves with every answer once the server closes the connection.
   */
  finish(pipelined?: string): Promise<RawAnswer[]>;
  /** Sends nothing more; resolves with the answers once the server closes the connection. */
  closed(): Promise<RawAnswer[]>;
  /** Drops the connection mid-upload. */
  destroy(): void;
}

/**
 * A raw TLS connection (node:tls, verifying the server against `ca`) that sends the headers
 * of `POST path` with the full Content-Length but only the first `sentBytes` of the body,
 * and holds the rest back: a request the server has admitted and is still reading.
 * `Connection: close` unless `keepAlive`, so the answers end with the connection.
 */
export async function startPartialUpload(
  url: string,
  opts: { ca: string; path: string; body: Buffer; sentBytes: number; contentType?: string; keepAlive?: boolean; localAddress?: string; headers?: Record<string, string> },
): Promise<PartialUpload> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port), ca: opts.ca, ALPNProtocols: ['http/1.1'], ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
  await once(socket, 'secureConnect');
  let received = '';
  socket.setEncoding('utf8').on('data', (d: string) => (received += d));
  let failure: Error | undefined;
  socket.on('error', (err) => (failure ??= err));
  const ended = new Promise<string>((resolve, reject) => {
    socket.once('close', () => (received !== '' ? resolve(received) : reject(failure ?? new Error('connection closed without an answer'))));
  });
  ended.catch(() => undefined); // a destroyed upload never reads its answer
  socket.write(
    `POST ${opts.path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: ${opts.contentType ?? 'application/json'}\r\n` +
      `Content-Length: ${opts.body.length}\r\nConnection: ${opts.keepAlive ? 'keep-alive' : 'close'}\r\n` +
      Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('') +
      '\r\n',
  );
  socket.write(opts.body.subarray(0, opts.sentBytes));
  return {
    socket,
    async finish(pipelined) {
      socket.write(opts.body.subarray(opts.sentBytes));
      if (pipelined) socket.write(pipelined);
      return parseAnswers(await ended);
    },
    async closed() {
      return parseAnswers(await ended);
    },
    destroy() {
      socket.destroy();
    },
  };
}

/** The HTTP/1.1 answers in `raw`, one after another, each framed by its Content-Length. */
function parseAnswers(raw: string): RawAnswer[] {
  const answers: RawAnswer[] = [];
  let rest = Buffer.from(raw, 'utf8');
  while (rest.length > 0) {
    const split = rest.indexOf('\r\n\r\n');
    if (split < 0) throw new Error(`no complete HTTP answer in ${JSON.stringify(rest.toString('utf8').slice(0, 200))}`);
    const [statusLine = '', ...lines] = rest.subarray(0, split).toString('utf8').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const length = headers['content-length'] === undefined ? rest.length - split - 4 : Number(headers['content-length']);
    answers.push({ status, headers, body: rest.subarray(split + 4, split + 4 + length).toString('utf8') });
    rest = rest.subarray(split + 4 + length);
  }
  return answers;
}
