import { createDevice } from '@tlsfleet/device-sdk';

// The SDK as an application embeds it: createDevice with a stored identity, nothing
// published. Usage: node sdk-idle-device.js STATE_DIR BROKER_URL
// Prints `{"event":"connected","afterMs":...,"sinceProcessStartMs":...}` once connected.

const [stateDir, brokerUrl] = process.argv.slice(2);
if (stateDir === undefined || brokerUrl === undefined) throw new Error('usage: sdk-idle-device STATE_DIR BROKER_URL');
const startedAt = performance.now();
const device = createDevice({ stateDir, brokerUrl });
device.once('connected', () => {
  const now = performance.now();
  process.stdout.write(JSON.stringify({ event: 'connected', afterMs: Math.round(now - startedAt), sinceProcessStartMs: Math.round(now) }) + '\n');
});
device.on('error', (err) => process.stdout.write(JSON.stringify({ event: 'error', code: err.code, message: err.message }) + '\n'));
process.once('SIGTERM', () => void device.close().then(() => process.exit(0)));
await device.start();
