import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { startFleetEnv, type DeviceCredentials, type FleetEnv } from './harness/broker-env.js';
import { metric, untilDoneOrQuiet, within } from './harness/broker-probe.js';

// A device that swaps certificates opens its new connection while QoS 1 messages stream to
// its persistent session. At the takeover Aedes resends the session's stored queue on the new
// connection while live deliveries reach it too, and the device acknowledges some of them
// before the resend gets to them. None of that may cost a message, nor the new connection.

const TAKEOVERS = 25;

describe('a persistent session taken over while QoS 1 messages stream to it', () => {
  let env: FleetEnv;
  let sender: MqttClient;
  const links: MqttClient[] = [];

  beforeAll(async () => {
    env = await startFleetEnv();
    sender = await env.connect(await env.enroll('streamer', { kind: 'service' }));
  }, 90_000);
  afterAll(async () => {
    await Promise.all([sender, ...links].map((c) => c?.endAsync(true)));
    await env?.stop();
  });

  it.each([
    // One filter: the device acknowledges live copies before the resend reaches them (counted).
    ['one filter', 'swapper-1', ['commands/#'], true],
    // Two filters match each message: the broker sends one copy and refuses the other.
    ['two overlapping filters', 'swapper-2', ['commands/#', 'commands/seq'], false],
  ])('with %s, delivers every message and keeps each new connection up', async (_what, id, filters, raceCounted) => {
    const dev = await env.enroll(id);
    const settledBefore = await metric(env.healthUrl, 'tlsfleet_broker_settled_redeliveries_total');
    onTestFailed(() => console.error(env.broker.stdout().split('\n').filter((l) => l.includes(id) && !l.includes('"client connected"')).slice(0, 40).join('\n')));
    const received = new Set<number>();
    const cutAfterConnack: number[] = [];
    let onMessage = () => {};
    /** Connects as the device (same client id, persistent session); counts what any link receives. */
    let newest = -1;
    const link = async (n: number): Promise<MqttClient> => {
      newest = n;
      const client = await env.connect(dev, { clean: false });
      links.push(client);
      client.on('message', (_topic, payload) => {
        received.add(Number(payload.toString()));
        onMessage();
      });
      // Only a newer link of the same client id may end this one.
      client.on('close', () => {
        if (n === newest && !stopping) cutAfterConnack.push(n);
      });
      return client;
    };
    let stopping = false;
    const first = await link(0);
    expect((await first.subscribeAsync(filters.map((f) => `devices/${id}/${f}`), { qos: 1 })).map((g) => g.qos)).toEqual(filters.map(() => 1));

    let sent = 0;
    let accepted = 0;
    let onAccepted = () => {};
    const acks: Promise<unknown>[] = [];
    const pump = setInterval(() => {
      for (let i = 0; i < 4; i++) {
        acks.push(
          sender.publishAsync(`devices/${id}/commands/seq`, String(sent++), { qos: 1 }).then(() => {
            accepted++;
            onAccepted();
          }),
        );
      }
    }, 2);
    try {
      for (let n = 1; n <= TAKEOVERS; n++) {
        // Make-before-break: the old link is up, and messages flow, while the new one connects.
        const from = accepted;
        await within(new Promise<void>((resolve) => (onAccepted = () => accepted >= from + 40 && resolve())), 10_000, `messages accepted for link ${n - 1}`);
        await link(n);
      }
    } finally {
      clearInterval(pump);
    }
    await Promise.all(acks);

    // Every message was accepted by the broker; wait until the last link holds all of them,
    // or nothing arrived for 10 s (the list below then names what was lost).
    const delivered = untilDoneOrQuiet(() => received.size === sent, 10_000);
    onMessage = delivered.arrived;
    await delivered.settled;
    stopping = true;
    expect(sent).toBeGreaterThan(TAKEOVERS * 20);
    expect([...Array(sent).keys()].filter((n) => !received.has(n))).toEqual([]);
    expect(cutAfterConnack).toEqual([]);
    // The race was there to lose: copies of queued messages the device had acknowledged already.
    if (raceCounted) expect(await metric(env.healthUrl, 'tlsfleet_broker_settled_redeliveries_total')).toBeGreaterThan(settledBefore);
  }, 120_000);
});
