import { checks, defineCommand } from '@tlsfleet/common';
import { CONFIG_FLAG, LOG_FLAG_DEFINITIONS } from './shared-flags.js';

export const DEV = defineCommand({
  name: 'dev',
  summary: 'Zero-setup local run: initialises the data dir if needed, then provisioning and the broker on 127.0.0.1.',
  configurable: true,
  flags: {
    'data-dir': { type: 'string', value: 'DIR', help: 'data dir, made on first run', default: '.tlsfleet', complete: 'dir' },
    port: { type: 'string', value: 'PORT', help: 'provisioning HTTPS port', default: '8443', check: checks.port },
    'broker-port': { type: 'string', value: 'PORT', help: 'broker MQTT over TLS port', default: '8883', check: checks.port },
    'health-port': { type: 'string', value: 'PORT', help: 'broker /healthz, /readyz and /metrics port', default: '9883', check: checks.port },
    ...LOG_FLAG_DEFINITIONS,
    ...CONFIG_FLAG,
  },
});
