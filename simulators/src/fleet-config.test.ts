import { describe, expect, it } from 'vitest';
import { parseSimulateArgs, SimulateUsageError } from './fleet-config.js';

describe('simulate options', () => {
  it('fills the defaults of the issue and freezes the result', () => {
    const c = parseSimulateArgs(['--devices', '10']);
    expect(c).toMatchObject({ devices: 10, ramp: 100, publishIntervalMs: 10_000, qos: 1, payloadBytes: 100, durationMs: 60_000, certTtlSeconds: 604_800, scenario: 'steady', revokePercent: 10, prefix: 'sim' });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads every flag', () => {
    const c = parseSimulateArgs(['--devices', '5', '--ramp', '7', '--publish-interval', '500ms', '--qos', '0', '--payload-bytes', '256', '--duration', '2m', '--cert-ttl', '30s', '--scenario', 'revocation', '--revoke-percent', '20', '--provisioning', 'https://p:8443', '--broker', 'mqtts://b:8883', '--admin-token', 't', '--ca', '/ca.pem', '--identities', '/ids', '--workers', '3', '--report', '/r', '--prefix', 'lab']);
    expect(c).toMatchObject({ ramp: 7, publishIntervalMs: 500, qos: 0, payloadBytes: 256, durationMs: 120_000, certTtlSeconds: 30, scenario: 'revocation', revokePercent: 20, provisioningUrl: 'https://p:8443', brokerUrl: 'mqtts://b:8883', adminToken: 't', caFile: '/ca.pem', identitiesDir: '/ids', workers: 3, reportDir: '/r', prefix: 'lab' });
  });

  it('runs lean devices unless the scenario needs the SDK, and takes --device-model and --probe-revocation', () => {
    expect(parseSimulateArgs(['--devices', '3'])).toMatchObject({ deviceModel: 'lean', probeRevocation: false });
    expect(parseSimulateArgs(['--devices', '3', '--scenario', 'renewal-storm'])).toMatchObject({ deviceModel: 'sdk' });
    expect(parseSimulateArgs(['--devices', '3', '--device-model', 'sdk', '--probe-revocation'])).toMatchObject({ deviceModel: 'sdk', probeRevocation: true });
  });

  it('mass-expiry: 2,000 SDK devices with 3-minute certificates unless told otherwise; renewals in-band unless --renewal-path https', () => {
    expect(parseSimulateArgs(['--scenario', 'mass-expiry'])).toMatchObject({ devices: 2000, certTtlSeconds: 180, deviceModel: 'sdk', renewalPath: 'inband' });
    expect(parseSimulateArgs(['--scenario', 'mass-expiry', '--devices', '40', '--cert-ttl', '30s', '--renewal-path', 'https'])).toMatchObject({ devices: 40, certTtlSeconds: 30, renewalPath: 'https' });
    expect(parseSimulateArgs(['--devices', '3'])).toMatchObject({ renewalPath: 'inband', certTtlSeconds: 604_800 });
  });

  it.each([
    [['--devices', '3', '--device-model', 'fast'], /--device-model must be one of lean, sdk/],
    [['--devices', '3', '--scenario', 'renewal-storm', '--device-model', 'lean'], /renewal-storm needs the SDK's renewals/],
    [[], /--devices is required/],
    [['--devices', '3', '--scenario', 'mass-expiry', '--device-model', 'lean'], /mass-expiry needs the SDK's renewals/],
    [['--devices', '3', '--renewal-path', 'carrier-pigeon'], /--renewal-path must be one of inband, https/],
    [['--devices', '0'], /--devices must be a whole number from 1/],
    [['--devices', '3', '--qos', '2'], /--qos must be 0 or 1/],
    [['--devices', '3', '--scenario', 'chaos'], /--scenario must be one of/],
    [['--devices', '3', '--duration', 'soon'], /--duration takes a duration/],
    [['--devices', '3', '--payload-bytes', '10'], /--payload-bytes must be a whole number from 64/],
    [['--devices', '3', '--provisioning', 'https://p'], /both --provisioning and --broker/],
    [['--devices', '3', '--provisioning', 'https://p', '--broker', 'mqtts://b'], /--data-dir DIR, or --admin-token T and --ca FILE/],
    [['--devices', '3', '--provisioning', 'http://p', '--broker', 'mqtts://b', '--data-dir', 'd'], /--provisioning must be a https:\/\/ URL/],
    [['--devices', '3', '--prefix', 'a/b'], /--prefix/],
    [['--devices', '3', '--bogus'], /bogus/],
  ])('refuses %j with a message that says what is wrong', (argv, message) => {
    expect(() => parseSimulateArgs(argv)).toThrow(SimulateUsageError);
    expect(() => parseSimulateArgs(argv)).toThrow(message);
  });
});
