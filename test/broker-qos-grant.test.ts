import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { startFleetEnv, type DeviceCredentials, type FleetEnv } from './harness/broker-env.js';
import { within } from './harness/broker-probe.js';

/**
 * Every delivery is at most the QoS granted to the subscription it is for [MQTT-3.8.4-6],
 * and a message matched by overlapping filters still reaches the client at the highest QoS
 * among them [MQTT-3.3.5-1]. The Eclipse Paho interoperability suite's
 * test_overlapping_subscriptions found Aedes 1.2 delivering QoS 2 through a wildcard
 * granted QoS 1 (moscajs/aedes#1074). The broker sends one copy per message at the highest
 * QoS of the matching filters (capped by the published QoS), which that test accepts.
 */
/** Every PUBLISH a client receives from now on, as it arrives. */
function publishes(client: MqttClient): { until(marker: string, payload: string): Promise<{ topic: string; qos: number }[]> } {
  const seen: { topic: string; qos: number; payload: string }[] = [];
  const waiters: (() => void)[] = [];
  client.on('packetreceive', (packet) => {
    if (packet.cmd !== 'publish') return;
    seen.push({ topic: packet.topic, qos: packet.qos, payload: packet.payload.toString() });
    for (const w of waiters.splice(0)) w();
  });
  return {
    async until(marker, payload) {
      const arrived = () => seen.some((p) => p.payload === marker);
      await within(new Promise<void>((resolve) => (arrived() ? resolve() : waiters.push(function check() { if (arrived()) resolve(); else waiters.push(check); }))), 10_000, `the marker ${marker}`);
      const upTo = seen.findIndex((p) => p.payload === marker);
      return seen.slice(0, upTo).filter((p) => p.payload === payload).map(({ topic, qos }) => ({ topic, qos }));
    },
  };
}

describe('broker: delivery QoS never above the grant', () => {
  let env: FleetEnv;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    env = await startFleetEnv();
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await env?.stop();
  });

  async function device(id: string, opts: IClientOptions = {}): Promise<{ client: MqttClient; creds: DeviceCredentials }> {
    const creds = await env.enroll(id);
    const client = await env.connect(creds, opts);
    client.on('error', () => undefined);
    clients.push(client);
    return { client, creds };
  }

  /** SUBSCRIBE with each filter at its QoS in one packet; the granted QoS in order. */
  async function subscribe(client: MqttClient, qosByFilter: Record<string, 0 | 1 | 2>): Promise<number[]> {
    const granted = await client.subscribeAsync(Object.fromEntries(Object.entries(qosByFilter).map(([f, qos]) => [f, { qos }])));
    return granted.map((g) => g.qos);
  }

  /**
   * Publishes `payload` at QoS 2, then a QoS 1 marker on `markerTopic`; resolves with the
   * PUBLISH packets of `payload` that arrived before the marker's (Aedes writes one client's
   * deliveries in the order it emits them). Read from 'packetreceive', not 'message', which
   * mqtt.js holds back for QoS 2 until PUBREL.
   */
  async function copiesOf(c: { client: MqttClient }, topic: string, payload: string, markerTopic: string): Promise<{ topic: string; qos: number }[]> {
    const arrived = publishes(c.client);
    await c.client.publishAsync(topic, payload, { qos: 2 });
    await c.client.publishAsync(markerTopic, `${payload}-marker`, { qos: 1 });
    return arrived.until(`${payload}-marker`, payload);
  }

  it('delivers a QoS 2 message at QoS 1 to a single wildcard subscription granted QoS 1 (mqtt.js)', async () => {
    const d = await device('qg-1');
    expect(await subscribe(d.client, { 'devices/qg-1/#': 1 })).toEqual([1]);
    expect(await copiesOf(d, 'devices/qg-1/state', 'single', 'devices/qg-1/marker')).toEqual([{ topic: 'devices/qg-1/state', qos: 1 }]);
  });

  it.each([
    ['wildcard filters granted QoS 2 and QoS 1 (Paho test_overlapping_subscriptions)', { '#': 2, '+': 1 }, 'c', 2],
    ['a wildcard granted QoS 1 and the exact topic at QoS 2', { '#': 1, exact: 2 }, 'exact', 2],
    ['the exact topic granted QoS 1 and a wildcard at QoS 2', { exact: 1, '#': 2 }, 'exact', 2],
    ['filters granted QoS 0, 1 and 0 (the exact topic)', { '#': 0, '+': 1, exact: 0 }, 'exact', 1],
  ] as const)('delivers a QoS 2 message once, at the highest QoS granted among the matching filters: %s (mqtt.js)', async (_, levels, level, qos) => {
    const id = `qg-${Object.entries(levels).map(([l, q]) => `${l === '#' ? 'h' : l === '+' ? 'p' : 'x'}${q}`).join('')}`;
    const d = await device(id);
    const filters = Object.fromEntries(Object.entries(levels).map(([l, q]) => [`devices/${id}/${l}`, q]));
    expect(await subscribe(d.client, filters)).toEqual(Object.values(levels));
    expect(await copiesOf(d, `devices/${id}/${level}`, 'overlap', `devices/${id}/marker`)).toEqual([{ topic: `devices/${id}/${level}`, qos }]);
  });

  it('delivers a QoS 2 message queued for an offline persistent session at QoS 1, its wildcard\'s grant (mqtt.js)', async () => {
    const d = await device('qg-6', { clean: false });
    expect(await subscribe(d.client, { 'devices/qg-6/#': 1 })).toEqual([1]);
    await d.client.endAsync();
    const svcCreds = await env.enroll('qg-svc', { kind: 'service' });
    const svc = await env.connect(svcCreds);
    clients.push(svc);
    await svc.publishAsync('devices/qg-6/commands/queued', 'queued', { qos: 2 });
    // The inbox listens before CONNACK: queued messages follow it at once.
    const again = mqtt.connect(env.brokerUrl, { clientId: 'qg-6', clean: false, cert: d.creds.chain, key: d.creds.key, ca: env.ca, protocolVersion: 4, reconnectPeriod: 0 });
    again.on('error', () => undefined);
    clients.push(again);
    const arrived = publishes(again);
    await within(new Promise((resolve) => again.once('connect', resolve)), 10_000, 'the reconnect');
    await svc.publishAsync('devices/qg-6/commands/marker', 'marker', { qos: 1 });
    expect(await arrived.until('marker', 'queued')).toEqual([{ topic: 'devices/qg-6/commands/queued', qos: 1 }]);
  });

  it('passes the Paho overlapping-subscriptions check with the Python paho-mqtt client', async () => {
    const creds = await env.enroll('qg-paho');
    const script = `
import json, ssl, sys, threading
import paho.mqtt.client as mqtt
port, ca, cert, key, cid = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
got, done, subscribed = [], threading.Event(), threading.Event()
c = mqtt.Client(client_id=cid, clean_session=True, protocol=mqtt.MQTTv311)
c.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
c.tls_insecure_set(True)
def on_message(cl, ud, m):
    got.append({"topic": m.topic, "qos": m.qos, "payload": m.payload.decode()})
    if m.payload == b"marker":
        done.set()
c.on_message = on_message
c.on_subscribe = lambda cl, ud, mid, granted: (print(json.dumps({"granted": list(granted)}), flush=True), subscribed.set())
c.connect("127.0.0.1", int(port), 30)
c.loop_start()
base = "devices/" + cid
c.subscribe([(base + "/#", 2), (base + "/+", 1)])
if not subscribed.wait(10): sys.exit(3)
c.publish(base + "/c", b"overlapping topic filters", qos=2)
c.publish(base + "/m", b"marker", qos=2)  # QoS 2 too: paho reports both at PUBREL, in order
if not done.wait(10): sys.exit(4)
c.disconnect(); c.loop_stop()
print(json.dumps({"messages": [m for m in got if m["payload"] != "marker"]}), flush=True)
`;
    const child = spawn('/usr/bin/python3', ['-c', script, String(env.broker.port), env.caFile, creds.chainFile, creds.keyFile, creds.id], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const [code] = (await within(once(child, 'close'), 30_000, 'the paho-mqtt client')) as [number | null];
    expect(code, out).toBe(0);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { granted?: number[]; messages?: { topic: string; qos: number }[] });
    expect(lines[0]?.granted).toEqual([2, 1]);
    const messages = lines.find((l) => l.messages)?.messages ?? [];
    // The suite accepts one copy at QoS 2 or one per subscription at QoS 2 and 1; this broker sends one.
    expect(messages.map((m) => ({ topic: m.topic, qos: m.qos }))).toEqual([{ topic: 'devices/qg-paho/c', qos: 2 }]);
  });
});
