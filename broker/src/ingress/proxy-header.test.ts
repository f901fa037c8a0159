import { describe, expect, it } from 'vitest';
import { parseProxyHeader, V1_MAX_BYTES, V2_MAX_BYTES, type ProxyParse } from './proxy-header.js';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 header: version 2, `cmd` 0 LOCAL / 1 PROXY, `famProto` byte, then `body`. */
function v2(cmd: number, famProto: number, body: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([SIG, Buffer.from([0x20 | cmd, famProto]), len, body]);
}

function inet(src: number[], dst: number[], sport: number, dport: number): Buffer {
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sport, 0);
  ports.writeUInt16BE(dport, 2);
  return Buffer.concat([Buffer.from(src), Buffer.from(dst), ports]);
}

function inet6(src: string, dst: string, sport: number, dport: number): Buffer {
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sport, 0);
  ports.writeUInt16BE(dport, 2);
  return Buffer.concat([Buffer.from(src, 'hex'), Buffer.from(dst, 'hex'), ports]);
}

const ok = (r: ProxyParse) => {
  if (r.status !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(r)}`);
  return r;
};

describe('PROXY protocol v1', () => {
  it('reads a TCP4 line and says where the header ends', () => {
    const line = 'PROXY TCP4 203.0.113.7 10.0.0.1 40000 8883\r\n';
    const r = ok(parseProxyHeader(Buffer.from(`${line}\x16\x03\x01`, 'latin1')));
    expect(r.length).toBe(line.length);
    expect(r.header).toEqual({ version: 1, command: 'proxy', source: { address: '203.0.113.7', port: 40000 }, destination: { address: '10.0.0.1', port: 8883 } });
  });

  it('reads a TCP6 line', () => {
    const r = ok(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n')));
    expect(r.header.source).toEqual({ address: '2001:db8::7', port: 65535 });
    expect(r.header.destination).toEqual({ address: '2001:db8::1', port: 0 });
  });

  it('reads UNKNOWN without addresses, ignoring the rest of the line', () => {
    const r = ok(parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff::1 whatever\r\n')));
    expect(r.header.source).toBeUndefined();
  });

  it('accepts the longest allowed line (107 bytes) and refuses one byte more', () => {
    const ip6 = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    ok(parseProxyHeader(Buffer.from(`PROXY TCP6 ${ip6} ${ip6} 65535 65535\r\n`)));
    // §2.1's worst case is UNKNOWN followed by two such addresses and ports.
    const longest = `PROXY UNKNOWN ${ip6} ${ip6} 65535 65535\r\n`;
    expect(longest.length).toBe(V1_MAX_BYTES);
    ok(parseProxyHeader(Buffer.from(longest)));
    const r = parseProxyHeader(Buffer.from(`PROXY UNKNOWN ${ip6} ${ip6} 65535 655350\r\n`));
    expect(r).toMatchObject({ status: 'invalid', reason: 'malformed' });
  });

  it('says incomplete for a prefix, and refuses 107 bytes without a line end instead of waiting on', () => {
    expect(parseProxyHeader(Buffer.from('PRO'))).toEqual({ status: 'incomplete' });
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 4'))).toEqual({ status: 'incomplete' });
    expect(parseProxyHeader(Buffer.alloc(V1_MAX_BYTES, 'PROXY ' + 'a'.repeat(200)))).toMatchObject({ status: 'invalid', reason: 'malformed' });
  });

  it.each([
    ['an IPv6 address in a TCP4 line', 'PROXY TCP4 ::1 10.0.0.1 1 2\r\n'],
    ['an out-of-range octet', 'PROXY TCP4 203.0.113.256 10.0.0.1 1 2\r\n'],
    ['a port over 65535', 'PROXY TCP4 203.0.113.7 10.0.0.1 65536 2\r\n'],
    ['a port with a leading zero', 'PROXY TCP4 203.0.113.7 10.0.0.1 040000 2\r\n'],
    ['a negative port', 'PROXY TCP4 203.0.113.7 10.0.0.1 -1 2\r\n'],
    ['a missing field', 'PROXY TCP4 203.0.113.7 10.0.0.1 40000\r\n'],
    ['a double space', 'PROXY TCP4  203.0.113.7 10.0.0.1 40000 2\r\n'],
    ['an unknown protocol', 'PROXY UDP4 203.0.113.7 10.0.0.1 40000 2\r\n'],
    ['a bare LF', 'PROXY TCP4 203.0.113.7 10.0.0.1 40000 2\n'],
    ['a stray CR', 'PROXY TCP4 203.0.113.7\r 10.0.0.1 40000 2\r\n'],
    ['an IPv4 address in a TCP6 line', 'PROXY TCP6 203.0.113.7 10.0.0.1 1 2\r\n'],
  ])('refuses %s', (_name, line) => {
    expect(parseProxyHeader(Buffer.from(line, 'latin1'))).toMatchObject({ status: 'invalid', reason: 'malformed' });
  });
});

describe('PROXY protocol v2', () => {
  it('reads TCP over IPv4', () => {
    const h = v2(1, 0x11, inet([203, 0, 113, 7], [10, 0, 0, 1], 40000, 8883));
    const r = ok(parseProxyHeader(Buffer.concat([h, Buffer.from([0x16, 0x03])])));
    expect(r.length).toBe(h.length);
    expect(r.header).toEqual({ version: 2, command: 'proxy', source: { address: '203.0.113.7', port: 40000 }, destination: { address: '10.0.0.1', port: 8883 } });
  });

  it('reads TCP over IPv6, in RFC 5952 form', () => {
    const r = ok(parseProxyHeader(v2(1, 0x21, inet6('20010db8000000000000000000000007', '20010db8000100000000000000000001', 1, 2))));
    expect(r.header.source).toEqual({ address: '2001:db8::7', port: 1 });
    expect(r.header.destination).toEqual({ address: '2001:db8:1::1', port: 2 });
  });

  it('skips TLVs after the addresses (AWS NLB sends its VPC endpoint id there)', () => {
    const tlv = Buffer.concat([Buffer.from([0xea, 0x00, 0x05]), Buffer.from('vpce1')]);
    const h = v2(1, 0x11, Buffer.concat([inet([198, 51, 100, 2], [10, 0, 0, 1], 5, 6), tlv]));
    const r = ok(parseProxyHeader(h));
    expect(r.length).toBe(h.length);
    expect(r.header.source?.address).toBe('198.51.100.2');
  });

  it('reads LOCAL (the proxy\'s own health check) without addresses, whatever the block holds', () => {
    const r = ok(parseProxyHeader(v2(0, 0x11, inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))));
    expect(r.header).toEqual({ version: 2, command: 'local', source: undefined, destination: undefined });
    expect(ok(parseProxyHeader(v2(0, 0x00, Buffer.alloc(0)))).header.command).toBe('local');
  });

  it('reads PROXY with family UNSPEC as no addresses', () => {
    expect(ok(parseProxyHeader(v2(1, 0x00, Buffer.alloc(0)))).header.source).toBeUndefined();
  });

  it('says incomplete until the announced length has arrived', () => {
    const h = v2(1, 0x11, inet([203, 0, 113, 7], [10, 0, 0, 1], 40000, 8883));
    for (let n = 1; n < h.length; n++) expect(parseProxyHeader(h.subarray(0, n)), `${n} bytes`).toEqual({ status: 'incomplete' });
  });

  it('refuses a header announcing more than the cap without waiting for it', () => {
    const big = Buffer.alloc(V2_MAX_BYTES);
    const h = v2(1, 0x11, Buffer.concat([inet([203, 0, 113, 7], [10, 0, 0, 1], 1, 2), big]));
    expect(parseProxyHeader(h.subarray(0, 16))).toMatchObject({ status: 'invalid', reason: 'malformed' });
  });

  it.each([
    ['version 1 in the v2 preamble', (() => { const h = v2(1, 0x11, inet([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)); h[12] = 0x11; return h; })()],
    ['an unknown command', (() => { const h = v2(1, 0x11, inet([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)); h[12] = 0x22; return h; })()],
    ['an unknown family', v2(1, 0x41, Buffer.alloc(12))],
    ['an unknown transport', v2(1, 0x13, Buffer.alloc(12))],
    ['an address block too short for IPv4', v2(1, 0x11, Buffer.alloc(11))],
    ['an address block too short for IPv6', v2(1, 0x21, Buffer.alloc(35))],
    ['a UNIX socket origin', v2(1, 0x31, Buffer.alloc(216))],
    ['a UDP origin', v2(1, 0x12, Buffer.alloc(12))],
  ])('refuses %s', (_name, h) => {
    expect(parseProxyHeader(h)).toMatchObject({ status: 'invalid', reason: 'malformed' });
  });
});

describe('anything else', () => {
  it.each([
    ['a TLS ClientHello', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])],
    ['an MQTT CONNECT', Buffer.from([0x10, 0x0c, 0x00, 0x04])],
    ['lower-case proxy', Buffer.from('proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n')],
    ['a corrupted v2 signature', Buffer.concat([Buffer.from('0d0a0d0a000d0a515549550a', 'hex'), Buffer.alloc(20)])],
  ])('is not a header: %s', (_name, bytes) => {
    expect(parseProxyHeader(bytes)).toMatchObject({ status: 'invalid', reason: 'no_header' });
  });

  it('waits on the first bytes of either signature', () => {
    expect(parseProxyHeader(Buffer.alloc(0))).toEqual({ status: 'incomplete' });
    expect(parseProxyHeader(SIG.subarray(0, 5))).toEqual({ status: 'incomplete' });
  });
});
