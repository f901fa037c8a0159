import { createSecureContext } from 'node:tls';
import { DeviceError, enrollWithStore, FileCredentialStore, identityStatus, type DeviceIdentity } from '@tlsfleet/device-sdk';
import type { Running, ShardConfig } from '../fleet-shard.js';
import { LeanDevice, type LeanDeviceHooks, type LeanTarget } from './lean-device.js';

/** What a lean device needs from the shard that runs it. */
export interface LeanShard {
  readonly config: ShardConfig;
  readonly running: Running[];
  readonly leanTarget: LeanTarget | undefined;
  onEnrolled(r: Running): void;
  onReused(): void;
  onStartFailed(code: string): void;
  onConnected(r: Running): void;
  onDisconnected(r: Running): void;
  onReenrollmentRequired(r: Running, code: string): void;
  countError(code: string): void;
}

/** The broker URL as a lean device connects to it, with the SDK's keepalive and backoff. */
export function leanTarget(brokerUrl: string): LeanTarget {
  const url = new URL(brokerUrl);
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || 8883),
    keepaliveSeconds: 60,
    connectTimeoutMs: 30_000,
    initialDelayMs: 1000,
    maxDelayMs: 30_000,
    maxInflight: 1000,
  };
}

const hooksByShard = new WeakMap<LeanShard, LeanDeviceHooks>();

/** One hooks object per shard; a device's tag is its place in `shard.running`. */
function hooksOf(shard: LeanShard): LeanDeviceHooks {
  let hooks = hooksByShard.get(shard);
  if (hooks === undefined) {
    const at = (d: LeanDevice) => shard.running[d.tag]!;
    hooks = {
      connected: (d) => shard.onConnected(at(d)),
      disconnected: (d) => shard.onDisconnected(at(d)),
      error: (_d, code) => shard.countError(code),
      refused: (d) => whyRefused(at(d).spec.stateDir),
      stopped: (d, code) => shard.onReenrollmentRequired(at(d), code),
    };
    hooksByShard.set(shard, hooks);
  }
  return hooks;
}

/**
 * The `lean` device model: enrollment through the device SDK (key pair, CSR, HTTPS, state
 * files in the SDK's format), then the MQTT session on a LeanDevice. The identity's PEM is
 * read once into a TLS context and not kept. Resolves once the device's first connection
 * attempt is over (accepted or not), so the shard can bound the devices starting at once.
 */
export async function startLeanDevice(shard: LeanShard, r: Running): Promise<void> {
  const { config } = shard;
  let identity: DeviceIdentity | undefined;
  try {
    const store = new FileCredentialStore(r.spec.stateDir);
    if (r.spec.token !== undefined) {
      identity = await enrollWithStore(store, { token: r.spec.token, provisioningUrl: config.provisioningUrl, bootstrapCa: config.bootstrapCa });
      shard.onEnrolled(r);
    } else {
      identity = (await store.load()).current;
      if (identity === undefined) throw new DeviceError('not_enrolled', `no identity in ${r.spec.stateDir} and no token`);
      shard.onReused();
      r.connectFrom = Date.now();
    }
  } catch (err) {
    shard.onStartFailed((err as DeviceError).code ?? 'internal_error');
    return;
  }
  const context = createSecureContext({ ca: identity.caBundlePem, cert: identity.chainPem, key: identity.privateKeyPem, minVersion: 'TLSv1.2' });
  const addresses = config.localAddresses;
  const local = addresses?.length ? addresses[r.spec.index % addresses.length] : undefined;
  const device = new LeanDevice(identity.deviceId, shard.running.indexOf(r), context, shard.leanTarget!, hooksOf(shard), local);
  const topic = `devices/${identity.deviceId}/telemetry`;
  r.device = {
    get state() {
      return device.state;
    },
    publish: (payload, qos, done) => device.publish(topic, Buffer.from(payload), qos, done),
    close: () => device.close(),
  };
  await device.start();
}

/**
 * The broker refused a session with a certificate we hold: as the SDK does, find out
 * whether the identity is dead (expired, or listed in the service's CRL) before retrying.
 */
async function whyRefused(stateDir: string): Promise<{ code: string; message: string } | undefined> {
  const identity = (await new FileCredentialStore(stateDir).load()).current;
  if (identity === undefined) return undefined;
  const status = await identityStatus(identity);
  if (status.state === 'revoked') return { code: 'revoked', message: `certificate ${identity.serial} is revoked` };
  if (status.state === 'expired') return { code: 'expired', message: `the certificate expired at ${status.notAfter}` };
  return undefined;
}
