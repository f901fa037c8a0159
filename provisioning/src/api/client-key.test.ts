import { describe, expect, it } from 'vitest';
import { clientKeyOf } from './client-key.js';

describe('clientKeyOf', () => {
  it.each([
    ['127.0.0.2', 'address:127.0.0.2'],
    ['::ffff:10.1.2.3', 'address:10.1.2.3'],
    ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', 'prefix:2001:db8:1:2::/64'],
    ['2001:db8:1:2::1', 'prefix:2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff::', 'prefix:2001:db8:1:2::/64'],
    ['2001:db8::1', 'prefix:2001:db8:0:0::/64'],
    ['::1', 'prefix:0:0:0:0::/64'],
    ['fe80::1%eth0', 'prefix:fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.33', 'prefix:64:ff9b:0:0::/64'],
    [undefined, 'address:unknown'],
  ])('counts %s as %s', (address, key) => {
    expect(clientKeyOf(address)).toBe(key);
  });

  it('counts every address of one /64 as one client, and another /64 apart', () => {
    const keys = new Set(['2001:db8:1:2::1', '2001:db8:1:2::dead:beef', '2001:db8:1:2:ffff:ffff:ffff:ffff'].map(clientKeyOf));
    expect(keys.size).toBe(1);
    expect(clientKeyOf('2001:db8:1:3::1')).not.toBe(clientKeyOf('2001:db8:1:2::1'));
  });
});
