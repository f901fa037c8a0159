import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IConnackPacket } from 'mqtt-packet';
import { once } from 'node:events';
import { connect as tlsConnect } from 'node:tls';
import { startFleetEnv, wssUrlOf, type DeviceCredentials, type FleetEnv } from './harness/broker-env.js';
import { countMatches, metricUntil, outputMatches, rawMqtt, within, type RawMqtt } from './harness/broker-probe.js';
import { revokeDevice } from './harness/device-env.js';

const NOT_AUTHORIZED = 5;

/** CONNECT as `clientId` over a raw TLS connection (resuming `session` when given); the CONNACK return code and the connection. */
async function connectRaw(env: FleetEnv, creds: DeviceCredentials, clientId: string, session?: Buffer): Promise<{ conn: RawMqtt; code: number | undefined }> {
  const conn = await rawMqtt(env.broker.port, creds, env.ca, session ? { session } : {});
  conn.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive: 30 });
  const connack = (await conn.next('connack')) as IConnackPacket;
  return { conn, code: connack.returnCode };
}

/** A session to resume from a first, full connection (its tickets arrive before CONNACK). */
async function firstSession(env: FleetEnv, creds: DeviceCredentials): Promise<Buffer> {
  const { conn, code } = await connectRaw(env, creds, creds.id);
  expect(code).toBe(0);
  expect(conn.socket.isSessionReused()).toBe(false);
  expect(conn.sessions.length).toBeGreaterThan(0);
  conn.socket.end();
  await conn.closed;
  return conn.sessions.at(-1) as Buffer;
}

describe('TLS session resumption', () => {
  describe('default: no resumable tickets', () => {
    let env: FleetEnv;
    beforeAll(async () => {
      env = await startFleetEnv({ brokerArgs: ['--ws-port', '0'] });
    });
    afterAll(async () => env?.stop());

    it('answers an offered session with a full handshake, and the device still connects', async () => {
      const d = await env.enroll('resume-off-1');
      const session = await firstSession(env, d);
      const { conn, code } = await connectRaw(env, d, d.id, session);
      expect(conn.socket.isSessionReused()).toBe(false);
      expect(code).toBe(0);
      conn.socket.end();
    });

    it('resumes nothing on the wss port either', async () => {
      const d = await env.enroll('resume-off-wss');
      const port = Number(new URL(wssUrlOf(env.broker)).port);
      const handshake = async (session?: Buffer) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, ca: env.ca, cert: d.chain, key: d.key, servername: 'localhost', ...(session ? { session } : {}) });
        const sessions: Buffer[] = [];
        socket.on('session', (s: Buffer) => sessions.push(s));
        await once(socket, 'secureConnect');
        // TLS 1.3 tickets follow the handshake: a request's answer comes after them.
        socket.write('GET /mqtt HTTP/1.1\r\nhost: localhost\r\n\r\n');
        await once(socket, 'data');
        const reused = socket.isSessionReused();
        socket.destroy();
        return { reused, session: sessions.at(-1) };
      };
      const first = await handshake();
      expect(first.session).toBeDefined();
      expect((await handshake(first.session)).reused).toBe(false);
    });
  });

  describe('--tls-session-tickets', () => {
    let env: FleetEnv;
    beforeAll(async () => {
      env = await startFleetEnv({ brokerArgs: ['--tls-session-tickets'] });
    });
    afterAll(async () => env?.stop());

    it('resumes, and the identity still comes from the certificate kept in the session', async () => {
      const d = await env.enroll('resume-on-1');
      const session = await firstSession(env, d);
      const resumed = await connectRaw(env, d, d.id, session);
      expect(resumed.conn.socket.isSessionReused()).toBe(true);
      expect(resumed.code).toBe(0);
      resumed.conn.socket.end();
      // The session speaks for resume-on-1 only: another clientId on it is refused.
      const spoof = await connectRaw(env, d, 'resume-on-other', session);
      expect(spoof.conn.socket.isSessionReused()).toBe(true);
      expect(spoof.code).toBe(NOT_AUTHORIZED);
    });

    it('refuses a revoked device that resumes a session from before its revocation', async () => {
      const d = await env.enroll('resume-revoked-1');
      const session = await firstSession(env, d);
      const live = await connectRaw(env, d, d.id);
      await revokeDevice(env, d.id);
      // The live session closing shows that the broker holds the new CRL.
      await live.conn.closed;
      const resumed = await connectRaw(env, d, d.id, session);
      expect(resumed.conn.socket.isSessionReused()).toBe(true);
      expect(resumed.code).toBe(NOT_AUTHORIZED);
      await metricUntil(env.healthUrl, 'tlsfleet_broker_auth_failures_total', { reason: 'revoked' }, (v) => v >= 1);
    });

    it('drops the tickets issued before a reload of the TLS material (SIGHUP)', async () => {
      const d = await env.enroll('resume-reload-1');
      const session = await firstSession(env, d);
      const reloaded = /TLS material reloaded/;
      const before = countMatches(env.broker.output(), reloaded);
      env.broker.child.kill('SIGHUP');
      await within(outputMatches(env.broker, reloaded, before), 5000, 'the SIGHUP reload');
      const after = await connectRaw(env, d, d.id, session);
      expect(after.conn.socket.isSessionReused()).toBe(false);
      expect(after.code).toBe(0);
      after.conn.socket.end();
    });
  });
});
