import { SocketAddress } from 'node:net';

/** What the limiter needs of a connection: its one 'close' event, and whether it already fired. */
export interface Closable {
  readonly closed: boolean;
  once(event: 'close', listener: () => void): unknown;
}

/**
 * Open connections per client address (`--max-connections-per-address`), the address being
 * the real client's: the PROXY header's, the trusted ingress's X-Forwarded-For entry, else
 * the TCP peer's. One Map of counters, so the connect path pays a lookup and a 'close'
 * listener; an address leaves the Map when its last connection closes.
 */
export class AddressLimiter {
  /** Default: unlimited; only counted, for the distinct-addresses gauge. */
  readonly maxPerAddress: number;
  private readonly open = new Map<string, number>();

  constructor(maxPerAddress = Number.POSITIVE_INFINITY) {
    if (maxPerAddress !== Number.POSITIVE_INFINITY && !(Number.isSafeInteger(maxPerAddress) && maxPerAddress >= 1)) {
      throw new Error(`--max-connections-per-address must be a whole number ≥ 1, not ${String(maxPerAddress)}`);
    }
    this.maxPerAddress = maxPerAddress;
  }

  /** Distinct client addresses with at least one open connection. */
  get addresses(): number {
    return this.open.size;
  }

  /** Open connections counted for `address` (any spelling of it). */
  connections(address: string | undefined): number {
    return this.open.get(canonicalAddress(address)) ?? 0;
  }

  /**
   * Counts `connection` against `address` until it closes, whichever way it closes; false,
   * counting nothing, when the address already has `maxPerAddress` open. The caller closes a
   * refused connection.
   */
  admit(address: string | undefined, connection: Closable): boolean {
    const key = canonicalAddress(address);
    const held = this.open.get(key) ?? 0;
    if (held >= this.maxPerAddress) return false;
    this.open.set(key, held + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const left = (this.open.get(key) ?? 1) - 1;
      if (left > 0) this.open.set(key, left);
      else this.open.delete(key);
    };
    connection.once('close', release);
    // Closed before it got here: its 'close' may already have fired.
    if (connection.closed) release();
    return true;
  }
}

/**
 * One spelling per address, so a client cannot get a second allowance by writing its address
 * another way: IPv4 as is; IPv6 as RFC 5952 text (lower case, `::`), zone dropped; an
 * IPv4-mapped IPv6 address (::ffff:203.0.113.7 from a dual-stack socket, ::ffff:cb00:7107 from
 * a v2 header) as its IPv4 address. Anything unparsable (never from Node or our header
 * parsers) keeps its own text; no address at all (a socket already closed) is "unknown".
 */
export function canonicalAddress(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  // The common case, and the cheap one: IPv4 as Node and both PROXY versions write it.
  if (!address.includes(':')) return address;
  let text: string;
  try {
    text = new SocketAddress({ address, family: 'ipv6' }).address;
  } catch {
    return address.toLowerCase();
  }
  return text.startsWith('::ffff:') && text.includes('.') ? text.slice('::ffff:'.length) : text;
}
