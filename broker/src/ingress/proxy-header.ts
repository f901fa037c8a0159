import { isIPv4, isIPv6 } from 'node:net';

/** One end of the proxied connection, as the load balancer saw it. */
export interface ProxyEndpoint {
  address: string;
  port: number;
}

/**
 * A decoded PROXY protocol header (haproxy.org/download/2.6/doc/proxy-protocol.txt).
 * `source` is undefined when the header carries no addresses: a v2 LOCAL command (the
 * proxy's own health check), v2 PROXY with family UNSPEC, or v1 UNKNOWN; the receiver then
 * uses the connection's own endpoints (§2.1, §2.2).
 */
export interface ProxyHeader {
  version: 1 | 2;
  command: 'proxy' | 'local';
  source: ProxyEndpoint | undefined;
  destination: ProxyEndpoint | undefined;
}

export type ProxyHeaderError = 'no_header' | 'malformed';

/** `incomplete`: a valid prefix so far, read more bytes (up to the caps) and parse again. */
export type ProxyParse =
  | { status: 'incomplete' }
  | { status: 'invalid'; reason: ProxyHeaderError; detail: string }
  | { status: 'ok'; header: ProxyHeader; length: number };

/** §2.1: a v1 line is at most 107 bytes, CRLF included. */
export const V1_MAX_BYTES = 107;
/**
 * Cap of a v2 header, 16-byte preamble included. §2.2 allows 64 KiB of TLVs; AWS NLB and
 * HAProxy send a few dozen bytes (VPC endpoint id, ALPN, SSL info), so 2 KiB bounds what
 * we buffer per connection before the TLS handshake without refusing real proxies.
 */
export const V2_MAX_BYTES = 2048;

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** §2.2: \r\n\r\n\0\r\nQUIT\n */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_PREAMBLE = 16;

const INCOMPLETE: ProxyParse = { status: 'incomplete' };
const invalid = (reason: ProxyHeaderError, detail: string): ProxyParse => ({ status: 'invalid', reason, detail });

/**
 * Parses the PROXY header at the start of `buf` (all bytes received so far). Strict: one
 * version per signature, exact separators, addresses valid for their family, ports in
 * range. Bounded: never asks for more than V1_MAX_BYTES / V2_MAX_BYTES.
 */
export function parseProxyHeader(buf: Buffer): ProxyParse {
  if (startsLike(buf, V2_SIGNATURE)) return buf.length < V2_SIGNATURE.length ? INCOMPLETE : parseV2(buf);
  if (startsLike(buf, V1_PREFIX)) return buf.length < V1_PREFIX.length ? INCOMPLETE : parseV1(buf);
  return invalid('no_header', 'the connection does not start with a PROXY protocol signature');
}

/** True when buf and sig agree on their common prefix (buf may be shorter than sig). */
function startsLike(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  return buf.subarray(0, n).equals(sig.subarray(0, n));
}

function parseV1(buf: Buffer): ProxyParse {
  const lf = buf.indexOf(0x0a);
  if (lf === -1) return buf.length >= V1_MAX_BYTES ? invalid('malformed', `v1 line longer than ${V1_MAX_BYTES} bytes`) : INCOMPLETE;
  if (lf + 1 > V1_MAX_BYTES) return invalid('malformed', `v1 line longer than ${V1_MAX_BYTES} bytes`);
  if (buf[lf - 1] !== 0x0d) return invalid('malformed', 'v1 line does not end with CRLF');
  const line = buf.toString('latin1', 0, lf - 1);
  if (line.includes('\r')) return invalid('malformed', 'stray CR in the v1 line');
  const length = lf + 1;
  const parts = line.split(' ');
  // §2.1: "UNKNOWN": the rest of the line up to CRLF is ignored; use the socket's endpoints.
  if (parts[1] === 'UNKNOWN') return { status: 'ok', length, header: { version: 1, command: 'proxy', source: undefined, destination: undefined } };
  if (parts.length !== 6) return invalid('malformed', 'v1 line needs PROXY <TCP4|TCP6> <src> <dst> <sport> <dport>');
  const [, family, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const valid = family === 'TCP4' ? isIPv4 : family === 'TCP6' ? isIPv6Address : undefined;
  if (!valid) return invalid('malformed', `v1 protocol ${JSON.stringify(family.slice(0, 8))} is not TCP4, TCP6 or UNKNOWN`);
  if (!valid(src) || !valid(dst)) return invalid('malformed', `v1 addresses are not ${family}`);
  const sp = v1Port(sport);
  const dp = v1Port(dport);
  if (sp === undefined || dp === undefined) return invalid('malformed', 'v1 ports must be decimal 0-65535');
  return { status: 'ok', length, header: { version: 1, command: 'proxy', source: { address: src, port: sp }, destination: { address: dst, port: dp } } };
}

/** isIPv6 also takes a zone identifier (`fe80::1%eth0`, `::1%00.0.10.0`), which an address in a PROXY line never has (inet_pton). */
function isIPv6Address(text: string): boolean {
  return isIPv6(text) && !text.includes('%');
}

function v1Port(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

/** §2.2: address block sizes by family (high nibble of byte 14). */
const V2_FAMILIES: Readonly<Record<number, { name: 'unspec' | 'inet' | 'inet6' | 'unix'; bytes: number }>> = {
  0x0: { name: 'unspec', bytes: 0 },
  0x1: { name: 'inet', bytes: 12 },
  0x2: { name: 'inet6', bytes: 36 },
  0x3: { name: 'unix', bytes: 216 },
};

function parseV2(buf: Buffer): ProxyParse {
  if (buf.length < V2_PREAMBLE) return INCOMPLETE;
  const verCmd = buf[12] as number;
  if (verCmd >> 4 !== 0x2) return invalid('malformed', `v2 version ${verCmd >> 4} is not 2`);
  const cmd = verCmd & 0x0f;
  if (cmd !== 0x0 && cmd !== 0x1) return invalid('malformed', `v2 command ${cmd} is neither LOCAL nor PROXY`);
  const famProto = buf[13] as number;
  const family = V2_FAMILIES[famProto >> 4];
  const transport = famProto & 0x0f;
  if (!family || transport > 0x2) return invalid('malformed', `v2 family/transport 0x${famProto.toString(16)} is unknown`);
  const length = V2_PREAMBLE + buf.readUInt16BE(14);
  if (length > V2_MAX_BYTES) return invalid('malformed', `v2 header of ${length} bytes is over the ${V2_MAX_BYTES}-byte cap`);
  if (buf.length < length) return INCOMPLETE;
  // §2.2: the receiver must ignore LOCAL's address block and use the real connection endpoints.
  if (cmd === 0x0) return { status: 'ok', length, header: { version: 2, command: 'local', source: undefined, destination: undefined } };
  if (family.name === 'unspec' || transport === 0x0) return { status: 'ok', length, header: { version: 2, command: 'proxy', source: undefined, destination: undefined } };
  // A broker listens on TCP only: a UNIX or DGRAM origin is not a client we can name.
  if (family.name === 'unix' || transport !== 0x1) return invalid('malformed', 'v2 origin is not TCP over IPv4 or IPv6');
  if (length - V2_PREAMBLE < family.bytes) return invalid('malformed', `v2 address block of ${length - V2_PREAMBLE} bytes is short for ${family.name}`);
  const a = V2_PREAMBLE;
  const [src, dst, ports] = family.name === 'inet' ? [ipv4(buf, a), ipv4(buf, a + 4), a + 8] : [ipv6(buf, a), ipv6(buf, a + 16), a + 32];
  return {
    status: 'ok',
    length,
    header: { version: 2, command: 'proxy', source: { address: src, port: buf.readUInt16BE(ports) }, destination: { address: dst, port: buf.readUInt16BE(ports + 2) } },
  };
}

function ipv4(buf: Buffer, at: number): string {
  return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
}

/** RFC 5952 text: lower-case hex, no leading zeros, the longest run (≥ 2) of zero groups as `::`. */
export function ipv6(buf: Buffer, at: number): string {
  const groups = Array.from({ length: 8 }, (_, i) => buf.readUInt16BE(at + 2 * i));
  let best = { start: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len) best = { start: i, len: j - i };
    i = j;
  }
  const hex = (g: number[]) => g.map((n) => n.toString(16)).join(':');
  if (best.len < 2) return hex(groups);
  return `${hex(groups.slice(0, best.start))}::${hex(groups.slice(best.start + best.len))}`;
}
