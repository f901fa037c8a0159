import { checks, defineCommand, type CommandGroup } from '@tlsfleet/common';
import { KEY_ALGORITHMS } from './keys.js';

// The enrollment flags `device run` shares with `device enroll` (it enrolls first on an empty state dir).
const ENROLL_FLAGS = {
  token: { type: 'string', value: 'T', help: 'one-time enrollment token (shows in `ps`: prefer --token-file)', secret: true },
  'token-file': { type: 'string', value: 'FILE', help: 'file holding the enrollment token, surrounding whitespace trimmed', complete: 'file' },
  provisioning: { type: 'string', value: 'URL', help: 'provisioning service, https://HOST:PORT' },
  'bootstrap-ca': { type: 'string', value: 'FILE', help: 'trust anchors for the provisioning service (no system CAs)', complete: 'file' },
  'key-type': { type: 'string', value: 'ALG', help: 'key algorithm of the device key', default: 'P-256', check: checks.oneOf(KEY_ALGORITHMS), complete: KEY_ALGORITHMS },
} as const;

export const ENROLL_DEFINITION = defineCommand({
  name: 'device enroll',
  summary: 'Enrolls this device with a one-time token; a no-op on a state dir that already holds an identity.',
  flags: {
    token: ENROLL_FLAGS.token,
    'token-file': ENROLL_FLAGS['token-file'],
    provisioning: { ...ENROLL_FLAGS.provisioning, required: true },
    state: { type: 'string', value: 'DIR', help: 'state dir for the key, certificate and trust bundle', required: true, complete: 'dir' },
    'bootstrap-ca': { ...ENROLL_FLAGS['bootstrap-ca'], required: true },
    'key-type': ENROLL_FLAGS['key-type'],
  },
  notes: ['Exactly one of --token and --token-file is required.'],
});

export const RUN_DEFINITION = defineCommand({
  name: 'device run',
  summary: 'Runs the reference device agent: connects, publishes a heartbeat, logs commands, renews before expiry; one JSON line per event.',
  flags: {
    state: { type: 'string', value: 'DIR', help: 'state dir for the key, certificate and trust bundle', required: true, complete: 'dir' },
    broker: { type: 'string', value: 'URL', help: 'broker, mqtts://HOST:PORT', required: true },
    heartbeat: { type: 'string', value: 'DURATION', help: 'interval between heartbeat messages', default: '30s', check: checks.durationSeconds },
    'persist-queue': { type: 'boolean', help: 'keep unsent QoS 1 messages in the state dir across restarts' },
    'reconnect-min': { type: 'string', value: 'DURATION', help: 'first reconnect delay (capped exponential backoff, full jitter)', default: '1s', check: checks.durationSeconds },
    'reconnect-max': { type: 'string', value: 'DURATION', help: 'longest reconnect delay', default: '60s', check: checks.durationSeconds },
    ...ENROLL_FLAGS,
  },
  notes: ['With --token or --token-file, --provisioning and --bootstrap-ca it enrolls first when the state dir is empty.', 'Exit status 3: the certificate is revoked or expired; enroll again with a new token.'],
});

export const DEVICE_GROUP: CommandGroup = {
  name: 'device',
  summary: 'The reference device agent on the SDK.',
  subcommands: [ENROLL_DEFINITION, RUN_DEFINITION],
};
