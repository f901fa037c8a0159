import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyMutations, mutations, settle } from '../../../common/src/test-arbitraries.fixture.js';
import { parseProxyHeader, V1_MAX_BYTES, V2_MAX_BYTES, type ProxyEndpoint, type ProxyHeader, type ProxyParse } from './proxy-header.js';

// The reference is haproxy.org/download/2.6/doc/proxy-protocol.txt read afresh: §2.1 (v1 text)
// and §2.2 (v2 binary), with tlsfleet's documented choices (a TCP broker: UNIX and DGRAM
// origins refused; a 2 KiB cap on v2; v1 ports without leading zeros). Addresses compare as
// addresses: IPv4 as dotted decimal, IPv6 as the WHATWG URL parser prints it (inet_pton's
// grammar: no zone identifier, no leading zeros in an embedded IPv4).

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

const typed = () => false; // parseProxyHeader reports with a result, never with an exception

/** An IPv6 address as 16 bytes, or undefined when inet_pton would refuse the text. */
function ipv6Bytes(text: string): Buffer | undefined {
  // The URL parser drops tabs and newlines anywhere in its input; inet_pton's grammar has none.
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  let host: string;
  try {
    host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const [head, tail] = host.includes('::') ? host.split('::') : [host, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const left = groups(head);
  const right = groups(tail);
  const all = tail === undefined ? left : [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, 2 * i));
  return out;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** An endpoint as comparable bytes: 4 or 16 address bytes and the port. */
function endpointKey(e: ProxyEndpoint | undefined): string | undefined {
  if (!e) return undefined;
  const bytes = IPV4.test(e.address) ? Buffer.from(e.address.split('.').map(Number)) : ipv6Bytes(e.address);
  return `${bytes?.toString('hex') ?? `unreadable:${e.address}`}/${e.port}`;
}

type Expected = { status: 'incomplete' } | { status: 'invalid' } | { status: 'ok'; length: number; version: 1 | 2; command: 'proxy' | 'local'; source: string | undefined; destination: string | undefined };

function reference(buf: Buffer): Expected {
  const n = Math.min(buf.length, SIG.length);
  if (buf.subarray(0, n).equals(SIG.subarray(0, n))) return referenceV2(buf);
  const v1 = Buffer.from('PROXY ', 'latin1');
  const m = Math.min(buf.length, v1.length);
  if (buf.subarray(0, m).equals(v1.subarray(0, m))) return referenceV1(buf);
  return { status: 'invalid' };
}

/** §2.1: "PROXY" SP proto SP src SP dst SP sport SP dport CRLF, at most 107 bytes; "UNKNOWN" ignores the rest of the line. */
function referenceV1(buf: Buffer): Expected {
  const lf = buf.indexOf(0x0a);
  if (lf === -1 || lf >= V1_MAX_BYTES) return buf.length < V1_MAX_BYTES ? { status: 'incomplete' } : { status: 'invalid' };
  if (buf[lf - 1] !== 0x0d) return { status: 'invalid' };
  const line = buf.toString('latin1', 0, lf - 1);
  if (line.includes('\r')) return { status: 'invalid' };
  const length = lf + 1;
  if (/^PROXY UNKNOWN(?: |$)/.test(line)) return { status: 'ok', length, version: 1, command: 'proxy', source: undefined, destination: undefined };
  const port = '(0|[1-9]\\d{0,4})';
  const m = new RegExp(`^PROXY (TCP4|TCP6) ([^ ]+) ([^ ]+) ${port} ${port}$`).exec(line);
  if (!m) return { status: 'invalid' };
  const [, family, src, dst, sp, dp] = m as unknown as [string, string, string, string, string, string];
  const address = (a: string) => (family === 'TCP4' ? (IPV4.test(a) ? Buffer.from(a.split('.').map(Number)) : undefined) : ipv6Bytes(a));
  const s = address(src);
  const d = address(dst);
  if (!s || !d || Number(sp) > 65535 || Number(dp) > 65535) return { status: 'invalid' };
  return { status: 'ok', length, version: 1, command: 'proxy', source: `${s.toString('hex')}/${Number(sp)}`, destination: `${d.toString('hex')}/${Number(dp)}` };
}

/** §2.2: signature, version 2, LOCAL or PROXY, family and transport, length, addresses. */
function referenceV2(buf: Buffer): Expected {
  if (buf.length < 16) return { status: 'incomplete' };
  const version = (buf[12] as number) >> 4;
  const command = (buf[12] as number) & 0xf;
  const family = (buf[13] as number) >> 4;
  const transport = (buf[13] as number) & 0xf;
  if (version !== 2 || command > 1 || family > 3 || transport > 2) return { status: 'invalid' };
  const length = 16 + buf.readUInt16BE(14);
  if (length > V2_MAX_BYTES) return { status: 'invalid' };
  if (buf.length < length) return { status: 'incomplete' };
  const none = { status: 'ok' as const, length, version: 2 as const, source: undefined, destination: undefined };
  if (command === 0) return { ...none, command: 'local' };
  if (family === 0 || transport === 0) return { ...none, command: 'proxy' };
  if (family === 3 || transport === 2) return { status: 'invalid' };
  const size = family === 1 ? 4 : 16;
  if (length - 16 < 2 * size + 4) return { status: 'invalid' };
  const at = (i: number) => buf.subarray(16 + i * size, 16 + (i + 1) * size).toString('hex');
  const ports = 16 + 2 * size;
  return { ...none, command: 'proxy', source: `${at(0)}/${buf.readUInt16BE(ports)}`, destination: `${at(1)}/${buf.readUInt16BE(ports + 2)}` };
}

function observed(r: ProxyParse): Expected {
  if (r.status !== 'ok') return { status: r.status };
  const h: ProxyHeader = r.header;
  return { status: 'ok', length: r.length, version: h.version, command: h.command, source: endpointKey(h.source), destination: endpointKey(h.destination) };
}

function parse(buf: Buffer): ProxyParse {
  const r = settle(() => parseProxyHeader(buf), typed);
  if (!r.ok) throw r.error;
  return r.value;
}

const port = fc.integer({ min: 0, max: 65535 });

/** A valid header, as a load balancer writes it, and what it says. */
interface Built {
  bytes: Buffer;
  source: string | undefined;
  destination: string | undefined;
  command: 'proxy' | 'local';
  version: 1 | 2;
}

const v1Header: fc.Arbitrary<Built> = fc.oneof(
  fc.record({ src: fc.ipV4(), dst: fc.ipV4(), sp: port, dp: port }).map(({ src, dst, sp, dp }) => ({ family: 'TCP4', src, dst, sp, dp })),
  fc.record({ src: fc.ipV6(), dst: fc.ipV6(), sp: port, dp: port }).map(({ src, dst, sp, dp }) => ({ family: 'TCP6', src, dst, sp, dp })),
).chain((h) =>
  fc.constant({
    bytes: Buffer.from(`PROXY ${h.family} ${h.src} ${h.dst} ${h.sp} ${h.dp}\r\n`, 'latin1'),
    source: endpointKey({ address: h.src, port: h.sp }),
    destination: endpointKey({ address: h.dst, port: h.dp }),
    command: 'proxy' as const,
    version: 1 as const,
  }),
);

const v1Unknown: fc.Arbitrary<Built> = fc.stringMatching(/^[ -~]{0,80}$/).map((rest) => ({
  bytes: Buffer.from(`PROXY UNKNOWN${rest ? ` ${rest}` : ''}\r\n`, 'latin1'),
  source: undefined,
  destination: undefined,
  command: 'proxy' as const,
  version: 1 as const,
}));

const v2Header: fc.Arbitrary<Built> = fc
  .record({
    command: fc.constantFrom(0, 1),
    family: fc.constantFrom(0, 1, 2),
    transport: fc.constantFrom(0, 1),
    src: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    dst: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    sp: port,
    dp: port,
    // §2.2.7: TLVs after the addresses (type, 2-byte length, value); opaque here.
    tlvs: fc.uint8Array({ maxLength: 300 }),
  })
  .map(({ command, family, transport, src, dst, sp, dp, tlvs }) => {
    const size = family === 1 ? 4 : family === 2 ? 16 : 0;
    const ports = Buffer.alloc(size ? 4 : 0);
    if (size) {
      ports.writeUInt16BE(sp, 0);
      ports.writeUInt16BE(dp, 2);
    }
    const body = Buffer.concat([Buffer.from(src.subarray(0, size)), Buffer.from(dst.subarray(0, size)), ports, tlvs]);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(body.length);
    const named = command === 1 && size > 0 && transport === 1;
    return {
      bytes: Buffer.concat([SIG, Buffer.of(0x20 | command, (family << 4) | transport), len, body]),
      source: named ? `${Buffer.from(src.subarray(0, size)).toString('hex')}/${sp}` : undefined,
      destination: named ? `${Buffer.from(dst.subarray(0, size)).toString('hex')}/${dp}` : undefined,
      command: command === 0 ? ('local' as const) : ('proxy' as const),
      version: 2 as const,
    };
  });

const header = fc.oneof(v1Header, v1Unknown, v2Header);
/** What follows the header on the wire: a TLS ClientHello's first bytes, or anything. */
const after = fc.oneof(fc.constant(Buffer.from('160301', 'hex')), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)));

/** Text-level edits of a v1 line: the characters a sloppy or hostile writer would slip in. */
const v1Edits = fc.array(fc.record({ at: fc.nat(), char: fc.constantFrom(' ', '%', ':', '.', '0', 'a', 'F', '\r', '\n', '\t', '+', '-', '%25', '%eth0', '0000') }), { minLength: 1, maxLength: 3 });

describe('parseProxyHeader, property-based', () => {
  it('decodes every header a proxy writes to the endpoints it wrote, whatever follows it', () => {
    fc.assert(
      fc.property(header, after, (h, rest) => {
        const r = parse(Buffer.concat([h.bytes, rest]));
        expect(observed(r)).toEqual({ status: 'ok', length: h.bytes.length, version: h.version, command: h.command, source: h.source, destination: h.destination });
      }),
      { numRuns: 600 },
    );
  });

  it('asks for more bytes on every strict prefix of a header, and never past its cap', () => {
    fc.assert(
      fc.property(header, fc.nat(), (h, cut) => {
        const prefix = h.bytes.subarray(0, cut % h.bytes.length);
        expect(parse(prefix).status).toBe('incomplete');
      }),
      { numRuns: 600 },
    );
  });

  it('never throws or hangs on mutated headers, and answers exactly what the spec says of the bytes', () => {
    fc.assert(
      fc.property(header, after, mutations(3), (h, rest, edits) => {
        const buf = applyMutations(Buffer.concat([h.bytes, rest]), edits);
        const r = parse(buf);
        expect(observed(r)).toEqual(reference(buf));
        if (r.status === 'incomplete') expect(buf.length).toBeLessThan(buf[0] === 0x0d ? V2_MAX_BYTES : V1_MAX_BYTES);
      }),
      { numRuns: 1000 },
    );
  });

  it('answers what the spec says of v1 lines with characters slipped in', () => {
    fc.assert(
      fc.property(fc.oneof(v1Header, v1Unknown), v1Edits, (h, edits) => {
        let text = h.bytes.toString('latin1');
        for (const { at, char } of edits) {
          const i = at % text.length;
          text = text.slice(0, i) + char + text.slice(i);
        }
        const buf = Buffer.from(text, 'latin1');
        expect(observed(parse(buf))).toEqual(reference(buf));
      }),
      { numRuns: 1000 },
    );
  });

  it('answers what the spec says of v2 headers whose length field is edited', () => {
    fc.assert(
      fc.property(v2Header, after, fc.integer({ min: 0, max: 0xffff }), (h, rest, length) => {
        const buf = Buffer.concat([h.bytes, rest]);
        buf.writeUInt16BE(length, 14);
        expect(observed(parse(buf))).toEqual(reference(buf));
      }),
      { numRuns: 600 },
    );
  });

  it('keeps its verdict as more bytes arrive, once it has one', () => {
    fc.assert(
      fc.property(header, after, mutations(2), fc.uint8Array({ minLength: 1, maxLength: 200 }), (h, rest, edits, more) => {
        const buf = applyMutations(Buffer.concat([h.bytes, rest]), edits);
        const first = observed(parse(buf));
        if (first.status === 'incomplete') return;
        expect(observed(parse(Buffer.concat([buf, more])))).toEqual(first);
      }),
      { numRuns: 600 },
    );
  });

  it('never throws or hangs on random bytes, behind either signature or none', () => {
    fc.assert(
      fc.property(fc.constantFrom(Buffer.alloc(0), SIG, Buffer.from('PROXY ', 'latin1')), fc.uint8Array({ maxLength: 3000 }), (prefix, bytes) => {
        const buf = Buffer.concat([prefix, bytes]);
        expect(observed(parse(buf))).toEqual(reference(buf));
      }),
      { numRuns: 500 },
    );
  });
});

describe('parseProxyHeader on counterexamples the properties found', () => {
  it.each([
    // Found by the property: a '%' slipped into an IPv6 address made the rest a zone identifier, which isIPv6 takes.
    'PROXY TCP6 ::000:0:1%00.0.10.0 ::10.0.100.10 0 0\r\n',
    'PROXY TCP6 fe80::1%eth0 ::1 40000 8883\r\n',
    'PROXY TCP6 ::1 fe80::1%25 40000 8883\r\n',
  ])('refuses a v1 TCP6 address with a zone identifier (%j): inet_pton has none, and it would split one client into many', (line) => {
    expect(parseProxyHeader(Buffer.from(line, 'latin1'))).toMatchObject({ status: 'invalid', reason: 'malformed' });
  });
});
