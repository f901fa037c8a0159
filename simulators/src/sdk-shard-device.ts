import { createDevice, type DeviceError } from '@tlsfleet/device-sdk';
import type { FleetShard, RenewalRoute, Running } from './fleet-shard.js';

/**
 * The `sdk` device model: a full device-SDK device (enrollment, renewal, mqtt.js session,
 * offline queue), as an application would run it.
 */
export async function startSdkDevice(shard: FleetShard, r: Running): Promise<void> {
  const { config } = shard;
  const device = createDevice({
    stateDir: r.spec.stateDir,
    brokerUrl: config.brokerUrl,
    provisioningUrl: config.provisioningUrl,
    bootstrapCa: config.bootstrapCa,
    token: r.spec.token,
    keepaliveSeconds: 60,
    inBandRenewal: config.renewalPath === 'inband',
  });
  r.device = {
    get state() {
      return device.state;
    },
    publish(payload, qos, done) {
      device.publish('telemetry', payload, { qos }).then(
        () => done(),
        (err: DeviceError) => done(err.code ?? 'internal_error'),
      );
    },
    close: () => device.close(),
  };
  device.on('enrolled', () => shard.onEnrolled(r));
  device.on('connected', (info) => shard.onConnected(r, info.attemptMs));
  device.on('disconnected', () => shard.onDisconnected(r));
  device.on('renewed', (_identity, info) => shard.onRenewed(r, renewalRoute(info)));
  device.on('error', (err) => shard.countError(err.code));
  device.on('reenrollment-required', (err) => shard.onReenrollmentRequired(r, err.code));
  try {
    await device.start();
    if (r.spec.token === undefined) shard.onReused();
  } catch (err) {
    shard.onStartFailed((err as DeviceError).code ?? 'internal_error');
  }
}

/**
 * What the SDK's `renewed` event says of the route: only a renewal after expiry is known
 * (HTTPS, /v1/renew-expired). The others are split by the broker's count of relayed
 * renewals (renewal-figures.ts).
 */
export function renewalRoute(info: { afterExpiry?: true } | undefined): RenewalRoute {
  return info?.afterExpiry === true ? 'https' : 'unknown';
}
