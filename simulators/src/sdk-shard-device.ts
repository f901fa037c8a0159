import { createDevice, type DeviceError } from '@tlsfleet/device-sdk';
import type { FleetShard, RenewalRoute, Running } from './fleet-shard.js';

/**
 * The `sdk` device model: a full device-SDK device (enrollment, renewal, mqtt.js session,
 * offline queue), as an application would run it.
 */
export async function startSdkDevice(shard: FleetShard, r: Running): Promise<void> {
  const { config } = shard;
  const options = {
    stateDir: r.spec.stateDir,
    brokerUrl: config.brokerUrl,
    provisioningUrl: config.provisioningUrl,
    bootstrapCa: config.bootstrapCa,
    token: r.spec.token,
    keepaliveSeconds: 60,
    inBandRenewal: config.renewalPath === 'inband',
  };
  const device = createDevice(options);
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

/** How the SDK says a renewal went (its `renewed` event's second argument). */
export function renewalRoute(info: unknown): RenewalRoute {
  const i = (info ?? {}) as Record<string, unknown>;
  if (i.inBand === true || i.path === 'inband' || i.path === 'mqtt' || i.via === 'mqtt') return 'inband';
  if (i.inBand === false || i.path === 'https' || i.via === 'https' || i.afterExpiry === true) return 'https';
  return 'unknown';
}
