/**
 * What one client may hold in the broker. Every limit is per identity (the clientId is the
 * certificate's identity), so a device cannot spread its state over reconnects.
 */
export interface ClientLimits {
  /**
   * Distinct topic filters one session may hold; default 100. A device needs a handful
   * (`devices/{id}/#` covers all it may see), a service two (`devices/+/#`,
   * `$tlsfleet/events/#`); AWS IoT Core allows 50 per connection. Each filter costs a
   * matcher entry, and in a persistent session a stored record, until it is unsubscribed.
   */
  maxSubscriptions: number;
  /**
   * Bytes (topic + payload) of the retained messages one identity last set; default 1 MiB:
   * a device's state or configuration, several times over. Retained messages outlive the
   * session, so this is what a device leaves in the broker after it goes.
   */
  maxRetainedBytes: number;
  /**
   * Retained messages one identity last set; default 100. Bounds the per-message overhead
   * (a map entry and a packet object, a few hundred bytes each) that the byte count misses
   * for tiny payloads.
   */
  maxRetainedMessages: number;
  /**
   * Inbound QoS 2 messages one identity may leave stored awaiting PUBREL, across its
   * connections (a persistent session keeps them, [MQTT-4.1.0-1]); default 100, as EMQX's
   * max_awaiting_rel. Each may be a whole packet (--max-packet-size). MQTT 3.1.1 cannot
   * advertise a receive window, so it must sit well above what a pipelining publisher
   * reaches in one burst.
   */
  maxInflightQos2: number;
  /**
   * Bytes the broker holds for one device subscriber that reads slower than its messages
   * come; default 1 MiB (eight largest packets). Past it QoS 0 messages for that device
   * are dropped and a QoS 1/2 delivery disconnects it (a persistent session keeps the
   * message queued), instead of making the publisher wait. Services are waited for, as
   * before, up to the drain timeout.
   */
  maxSubscriberBacklogBytes: number;
}

export const DEFAULT_CLIENT_LIMITS: Readonly<ClientLimits> = Object.freeze({
  maxSubscriptions: 100,
  maxRetainedBytes: 1024 * 1024,
  maxRetainedMessages: 100,
  maxInflightQos2: 100,
  maxSubscriberBacklogBytes: 1024 * 1024,
});

/** The `limit` label of tlsfleet_broker_limit_refusals_total. */
export type LimitName = 'subscriptions' | 'retained_bytes' | 'retained_messages' | 'inflight_qos2';

/** The flag that sets each limit, for log lines an operator can act on. */
export const LIMIT_FLAGS: Readonly<Record<LimitName, string>> = {
  subscriptions: '--max-subscriptions-per-client',
  retained_bytes: '--max-retained-bytes-per-client',
  retained_messages: '--max-retained-messages-per-client',
  inflight_qos2: '--max-inflight-qos2',
};

/** The limits with defaults filled in; throws on a value that is not a whole number ≥ 1. */
export function clientLimits(given: Partial<ClientLimits> = {}): Readonly<ClientLimits> {
  const limits = { ...DEFAULT_CLIENT_LIMITS, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) } as ClientLimits;
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a whole number ≥ 1, not ${JSON.stringify(value)}`);
  }
  return Object.freeze(limits);
}

/**
 * A payload the broker keeps: its own copy when it is a view of a larger buffer. Parsed
 * payloads are views of the socket's read, so a 10-byte retained message read beside a
 * 128 KiB one would otherwise pin all 128 KiB for as long as it is kept.
 */
export function detachedPayload(payload: Buffer): Buffer {
  if (payload.byteOffset === 0 && payload.byteLength === payload.buffer.byteLength) return payload;
  const copy = Buffer.allocUnsafeSlow(payload.length);
  payload.copy(copy);
  return copy;
}
