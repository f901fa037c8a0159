import { BlockList, isIP } from 'node:net';

/**
 * The addresses allowed to speak the PROXY protocol to us (`--trusted-proxy CIDR`, repeatable).
 * Anyone else could claim any client address, so their connections are closed unread.
 */
export class TrustedProxies {
  readonly cidrs: readonly string[];
  private readonly list = new BlockList();

  /** Throws a message meant for people on a malformed CIDR. A bare address is a /32 or /128. */
  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(cidr.trim());
      const family = m ? isIP(m[1] as string) : 0;
      if (!m || family === 0) throw new Error(`--trusted-proxy ${JSON.stringify(cidr)} is not an IPv4 or IPv6 address or CIDR (e.g. 10.0.0.0/8, fd00::/8)`);
      const max = family === 4 ? 32 : 128;
      const prefix = m[2] === undefined ? max : Number(m[2]);
      if (prefix > max) throw new Error(`--trusted-proxy ${JSON.stringify(cidr)}: prefix /${prefix} is longer than ${max}`);
      this.list.addSubnet(m[1] as string, prefix, family === 4 ? 'ipv4' : 'ipv6');
    }
    this.cidrs = Object.freeze([...cidrs]);
  }

  /** Whether a socket's remoteAddress is a trusted proxy; IPv4-mapped IPv6 (::ffff:a.b.c.d) counts as IPv4. */
  has(address: string | undefined): boolean {
    if (address === undefined) return false;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    const plain = mapped ? (mapped[1] as string) : address;
    const family = isIP(plain);
    if (family === 0) return false;
    return this.list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
  }
}
