import type { BackoffOptions } from './backoff.js';
import type { CredentialStore } from './credential-store.js';
import type { DeviceError } from './errors.js';
import type { KeyAlgorithm } from './keys.js';

/** What the SDK tells about an identity: never the key. */
export interface IdentitySummary {
  deviceId: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  renewAfter: string;
}

export interface DeviceEvents {
  enrolled: [identity: IdentitySummary];
  /** `afterExpiry`: renewed at /v1/renew-expired after the certificate had expired (a device that slept). */
  renewed: [identity: IdentitySummary, info?: { afterExpiry: true }];
  /**
   * A link is up. `attemptMs`: from the start of the connection attempt that succeeded to its
   * CONNACK. `swap`: the session moved to a renewed certificate without a break (no
   * `disconnected` came before; the old link carried traffic until this one was up).
   */
  connected: [info: { serial: string; sessionPresent: boolean; attemptMs: number; swap?: true }];
  /** The session was lost (never for a certificate swap). */
  disconnected: [info: { reason: string }];
  /** A connection attempt failed and the next waits `delayMs`; `slow` when paced as a configuration error. */
  reconnecting: [info: { error: DeviceError; delayMs: number; slow: boolean }];
  /**
   * The certificate is revoked, or expired and not renewed after expiry (the service does not
   * allow it, or refused): no more connecting or renewing until a new token enrolls it.
   */
  'reenrollment-required': [error: DeviceError];
  /** Emitted only while someone listens: a device never dies of an unhandled 'error'. */
  error: [error: DeviceError];
}

export interface DeviceOptions {
  /** Directory for the file credential store (and the queue journal). */
  stateDir?: string;
  /** Another store (secure element, TPM); default a FileCredentialStore in stateDir. */
  store?: CredentialStore;
  /** mqtts://host:port */
  brokerUrl: string;
  /** Needed to enroll; renewals go where the identity was issued. */
  provisioningUrl?: string;
  /** PEM trust anchors given at flash time; the only CAs enrollment trusts. */
  bootstrapCa?: string;
  /** One-time enrollment token; needed only while no identity is stored. */
  token?: string;
  /** Default P-256. */
  keyAlgorithm?: KeyAlgorithm;
  /** MQTT keepalive, s. Default 30. */
  keepaliveSeconds?: number;
  /**
   * Reconnect backoff; default 1 s doubling to 60 s, full jitter. A configuration error
   * (certificate does not verify, unknown host, or a refusal lasting `configurationAfterMs`,
   * default 2 min) waits 30 s doubling to `configurationMaxDelayMs` (default 5 min) instead.
   */
  reconnect?: BackoffOptions & { stableAfterMs?: number; configurationMaxDelayMs?: number; configurationAfterMs?: number };
  /** Renewal retry backoff; default 1 s doubling to 5 min, full jitter, never past notAfter. */
  renewalRetry?: BackoffOptions;
  /**
   * Renew over the MQTT session (`$tlsfleet/certificates/<id>/renew`) while connected; HTTPS
   * `/v1/renew` when offline, or when the broker has no renewer or does not answer. Default true.
   */
  inBandRenewal?: boolean;
  /** How long an in-band renewal waits for the broker's answer before it uses HTTPS, ms. Default 10000. */
  inBandTimeoutMs?: number;
  /** Offline QoS 1 queue. `persist` keeps it in stateDir/outbox.jsonl across restarts. */
  queue?: { maxMessages?: number; maxBytes?: number; persist?: boolean };
  /** Injected by tests. */
  random?: () => number;
  now?: () => number;
}

export interface PublishOptions {
  /** Default 1. */
  qos?: 0 | 1;
  retain?: boolean;
}

export type MessageHandler = (subtopic: string, payload: Buffer, info: { topic: string; retained: boolean }) => void;

export type DeviceState = 'idle' | 'starting' | 'running' | 'reenrollment-required' | 'closed';
