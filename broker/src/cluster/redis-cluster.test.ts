import { describe, expect, it } from 'vitest';
import { parseRedisUrl, redactRedisUrl } from './redis-cluster.js';

describe('parseRedisUrl', () => {
  it('reads host, port, user, password and database, with Redis defaults', () => {
    expect(parseRedisUrl('redis://redis.internal')).toEqual({ host: 'redis.internal', port: 6379 });
    expect(parseRedisUrl('redis://fleet:p%40ss@10.0.0.5:6380/3')).toEqual({ host: '10.0.0.5', port: 6380, username: 'fleet', password: 'p@ss', db: 3 });
    expect(parseRedisUrl('redis://[::1]:6379')).toMatchObject({ host: '::1' });
  });

  it('asks for TLS 1.2+ on rediss://, verified against --cluster-ca when given', () => {
    expect(parseRedisUrl('rediss://redis.internal:6380')).toMatchObject({ tls: { minVersion: 'TLSv1.2' } });
    expect(parseRedisUrl('rediss://redis.internal:6380').tls).not.toHaveProperty('ca');
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    expect(parseRedisUrl('rediss://redis.internal:6380', ca)).toMatchObject({ tls: { minVersion: 'TLSv1.2', ca } });
    expect(parseRedisUrl('redis://redis.internal')).not.toHaveProperty('tls');
  });

  it('refuses a CA for a plain redis:// URL, other schemes and bad databases, never repeating the password', () => {
    expect(() => parseRedisUrl('redis://u:s3cret@h', 'pem')).toThrow('--cluster-ca applies to a rediss:// (TLS) --cluster URL only');
    expect(() => parseRedisUrl('http://u:s3cret@h')).toThrow('--cluster must be a redis:// or rediss:// URL');
    expect(() => parseRedisUrl('redis://u:s3cret@h/x')).toThrow('database number');
    for (const bad of ['redis://u:s3cret@h', 'http://u:s3cret@h', 'redis://u:s3cret@h/x']) {
      try {
        parseRedisUrl(bad, 'pem');
      } catch (err) {
        expect((err as Error).message).not.toContain('s3cret');
      }
    }
    expect(redactRedisUrl('rediss://u:s3cret@h:6380/2')).toBe('rediss://u:***@h:6380/2');
  });
});
