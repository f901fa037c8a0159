import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { mustOpenssl } from './openssl-pki.js';

/** One request a receiver got: its headers and raw body. */
export interface Received {
  headers: IncomingMessage['headers'];
  raw: string;
}

/** A real HTTP(S) receiver on 127.0.0.1:0 for the enrollment hook and webhooks. */
export interface Receiver {
  url: string;
  received: Received[];
  /** Resolves with the next request received (after those already seen). */
  next(): Promise<Received>;
  close(): Promise<void>;
}

/** `answer` decides each reply; leaving `res` open makes a receiver that never answers. */
export type Answer = (req: Received, res: ServerResponse, index: number) => void;

export async function startReceiver(answer: Answer, tls?: { key: string; cert: string }): Promise<Receiver> {
  const received: Received[] = [];
  const waiting: ((r: Received) => void)[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { headers: req.headers, raw: Buffer.concat(chunks).toString('utf8') };
      received.push(r);
      answer(r, res, received.length - 1);
      waiting.shift()?.(r);
    });
  };
  const server: Server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}/hook`,
    received,
    next: () => new Promise((resolve) => waiting.push(resolve)),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
}

/** A throwaway CA and a server certificate for 127.0.0.1 it signs, made with openssl. */
export async function receiverPki(dir: string): Promise<{ caPem: string; key: string; cert: string }> {
  const f = (n: string) => join(dir, n);
  await mustOpenssl([
    'req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('hook-ca.key'), '-out', f('hook-ca.pem'),
    '-days', '2', '-subj', '/CN=hook test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign',
  ]);
  await mustOpenssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('hook.key'), '-out', f('hook.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(f('hook.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await mustOpenssl(['x509', '-req', '-in', f('hook.csr'), '-CA', f('hook-ca.pem'), '-CAkey', f('hook-ca.key'), '-set_serial', '0x1234', '-days', '2', '-extfile', f('hook.ext'), '-out', f('hook.pem')]);
  return { caPem: readFileSync(f('hook-ca.pem'), 'utf8'), key: readFileSync(f('hook.key'), 'utf8'), cert: readFileSync(f('hook.pem'), 'utf8') };
}
