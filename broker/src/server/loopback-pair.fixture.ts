import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import type { PeerCertificate } from '@tlsfleet/common';
import { Aedes } from 'aedes';
import { generate, parser as mqttParser, type Packet } from 'mqtt-packet';
import { expect } from 'vitest';
import { ConnectionGuard, guardConnection } from './connection-guard.js';

/** A device peer for guards in tests; no certificate behind it. */
export const testPeer: PeerCertificate = { identity: { kind: 'device', name: 'd1', trustDomain: 'x.test' }, serial: '1', notAfterMs: Date.now() + 60_000, spkiDer: Buffer.alloc(0), authorityKeyId: undefined };

export interface LoopbackPair {
  /** The connecting side. */
  readonly client: Socket;
  /** The accepted side, as the broker's listener gets it. */
  readonly socket: Socket;
  close(): void;
}

/** A real TCP connection on 127.0.0.1: both ends, and a close for afterEach. */
export async function loopbackPair(): Promise<LoopbackPair> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  const [socket] = await accepted;
  return {
    client,
    socket,
    close: () => {
      client.destroy();
      socket.destroy();
      server.close();
    },
  };
}

/** A raw MQTT 3.1.1 client of guardedAedes: its socket, and the next packet of a kind it receives. */
export interface RawMqttClient {
  readonly socket: Socket;
  next(cmd: string): Promise<Packet>;
  /** Packets of a kind received and not yet taken by next. */
  waiting(cmd: string): number;
}

/** A guard as the broker makes one, for tests: 16 MiB packets, violations ignored. */
export function testGuard(): ConnectionGuard {
  return new ConnectionGuard(testPeer, { maxPacketBytes: 1 << 24, onViolation: () => undefined, tally: { in: 0, out: 0 } });
}

/** A real Aedes on 127.0.0.1 whose connections are guarded as the broker guards them, and CONNECTed raw clients of it. */
export async function guardedAedes(): Promise<{ aedes: Aedes; client(clientId: string): Promise<RawMqttClient>; close(): void }> {
  const aedes = await Aedes.createBroker();
  const server = createServer((socket) => aedes.handle(guardConnection(socket, testGuard())));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const sockets: Socket[] = [];
  const client = async (clientId: string): Promise<RawMqttClient> => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    const packets: Packet[] = [];
    const p = mqttParser();
    p.on('packet', (packet: Packet) => packets.push(packet));
    socket.on('data', (chunk: Buffer) => p.parse(chunk));
    const next = async (cmd: string) => {
      for (;;) {
        const i = packets.findIndex((x) => x.cmd === cmd);
        if (i >= 0) return packets.splice(i, 1)[0] as Packet;
        await once(socket, 'data');
      }
    };
    socket.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 0 }));
    await next('connack');
    return { socket, next, waiting: (cmd) => packets.filter((x) => x.cmd === cmd).length };
  };
  const close = () => {
    for (const s of sockets) s.destroy();
    aedes.close();
    server.close();
  };
  return { aedes, client, close };
}

/**
 * Through guardedAedes: one client subscribes to devices/+/t at QoS 1, another publishes a
 * QoS 0 and then a QoS 1 message to it; expects both delivered as sent (the subscriber
 * acknowledges the second) and the publisher's PUBACK.
 */
export async function relayQoS0AndQoS1(broker: Awaited<ReturnType<typeof guardedAedes>>): Promise<void> {
  const sub = await broker.client('sub');
  sub.socket.write(generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'devices/+/t', qos: 1 }] }));
  await sub.next('suback');
  const pub = await broker.client('pub');
  pub.socket.write(generate({ cmd: 'publish', topic: 'devices/d1/t', payload: Buffer.from('q0'), qos: 0, retain: false, dup: false }));
  const q0 = await sub.next('publish');
  pub.socket.write(generate({ cmd: 'publish', topic: 'devices/d2/t', payload: Buffer.from('q1'), qos: 1, messageId: 11, retain: false, dup: false }));
  const q1 = await sub.next('publish');
  const puback = await pub.next('puback');
  // The subscriber acknowledges its QoS 1 delivery; the PINGRESP shows the broker read it.
  sub.socket.write(Buffer.concat([generate({ cmd: 'puback', messageId: q1.messageId as number }), generate({ cmd: 'pingreq' })]));
  await sub.next('pingresp');
  expect(puback).toMatchObject({ cmd: 'puback', messageId: 11 });
  expect(q0).toMatchObject({ topic: 'devices/d1/t', qos: 0 });
  expect((q0 as { payload: Buffer }).payload.toString()).toBe('q0');
  expect(q1).toMatchObject({ topic: 'devices/d2/t', qos: 1 });
  expect((q1 as { payload: Buffer }).payload.toString()).toBe('q1');
}
