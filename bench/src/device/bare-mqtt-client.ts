import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';

// The reference of `npm run bench:device`: a bare mqtt.js client with a device's
// certificate and the options the SDK's connection uses, and nothing else (no key
// checks, no renewal, no queue). Usage: node bare-mqtt-client.js STATE_DIR BROKER_URL
// Prints `{"event":"connected","afterMs":...,"sinceProcessStartMs":...}` once connected.

const [stateDir, brokerUrl] = process.argv.slice(2);
if (stateDir === undefined || brokerUrl === undefined) throw new Error('usage: bare-mqtt-client STATE_DIR BROKER_URL');
const identity = JSON.parse(readFileSync(join(stateDir, 'identity.json'), 'utf8')) as { deviceId: string; privateKeyPem: string; chainPem: string; caBundlePem: string };
const startedAt = performance.now();
const client = mqtt.connect(brokerUrl, {
  protocolVersion: 4,
  clientId: identity.deviceId,
  clean: false,
  keepalive: 30,
  reconnectPeriod: 0,
  connectTimeout: 10_000,
  resubscribe: false,
  key: identity.privateKeyPem,
  cert: identity.chainPem,
  ca: identity.caBundlePem,
  rejectUnauthorized: true,
});
client.once('connect', () => {
  const now = performance.now();
  process.stdout.write(JSON.stringify({ event: 'connected', afterMs: Math.round(now - startedAt), sinceProcessStartMs: Math.round(now) }) + '\n');
});
client.on('error', (err) => process.stdout.write(JSON.stringify({ event: 'error', message: err.message }) + '\n'));
process.once('SIGTERM', () => client.end(false, () => process.exit(0)));
