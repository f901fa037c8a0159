import { createServer, type Server, type Socket } from 'node:net';
import { parseProxyHeader, type ProxyEndpoint, type ProxyHeader } from './proxy-header.js';
import type { TrustedProxies } from './trusted-proxies.js';

/** Why a connection was closed before TLS: metric label and log reason. */
export type ProxyRefusal = 'untrusted_proxy' | 'no_header' | 'malformed' | 'timeout' | 'closed';

export interface ProxyListenerOptions {
  trusted: TrustedProxies;
  /** Deadline for the whole header, from accept, ms (the broker's connect timeout, default 10 s). */
  headerTimeoutMs: number;
  /**
   * A trusted proxy sent a valid header: `socket` is paused with any bytes past the header
   * pushed back (the TLS ClientHello often shares the header's segment). `client` is the
   * header's source, or the socket's own peer for LOCAL / UNSPEC / UNKNOWN.
   */
  onAccepted(socket: Socket, client: ProxyEndpoint, header: ProxyHeader): void;
  /** The socket is already destroyed. */
  onRefused(reason: ProxyRefusal, peer: ProxyEndpoint, detail: string): void;
}

/**
 * The TCP listener in front of TLS when the broker sits behind a PROXY protocol load
 * balancer (AWS NLB, HAProxy `mode tcp` + `send-proxy[-v2]`). The header comes in clear
 * before the ClientHello, so it has to be read here, from the raw socket, before the
 * socket is handed to the TLS server.
 *
 * Why not aedes-protocol-decoder: it decodes PROXY headers from the first bytes Aedes
 * reads, i.e. inside `aedes.handle()`, after our TLS server has already taken those bytes
 * as a (broken) ClientHello. It also trusts any peer's header, and we need the client's
 * address before the handshake for its logs. The format is tiny; a strict bounded parser
 * (proxy-header.ts) is less code than adapting it.
 */
export function createProxyListener(opts: ProxyListenerOptions): Server {
  return createServer({ noDelay: true }, (socket) => {
    const peer = { address: socket.remoteAddress ?? '?', port: socket.remotePort ?? 0 };
    const refuse = (reason: ProxyRefusal, detail: string) => {
      cleanup();
      socket.destroy();
      opts.onRefused(reason, peer, detail);
    };
    if (!opts.trusted.has(socket.remoteAddress)) {
      socket.destroy();
      return opts.onRefused('untrusted_proxy', peer, `${peer.address} is not in --trusted-proxy`);
    }

    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => refuse('timeout', `no complete PROXY header within ${opts.headerTimeoutMs} ms`), opts.headerTimeoutMs).unref();
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const parsed = parseProxyHeader(buf);
      if (parsed.status === 'incomplete') return;
      if (parsed.status === 'invalid') return refuse(parsed.reason, parsed.detail);
      cleanup();
      socket.pause();
      const rest = buf.subarray(parsed.length);
      if (rest.length > 0) socket.unshift(rest);
      opts.onAccepted(socket, parsed.header.source ?? peer, parsed.header);
    };
    const onClose = () => refuse('closed', 'closed before a complete PROXY header');
    const onError = () => undefined; // 'close' follows and reports it
    function cleanup(): void {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      socket.removeListener('error', onError);
    }
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onError);
  });
}
