import { defineCommand } from '@tlsfleet/common';

const SCENARIO_NAMES = ['steady', 'reconnect-storm', 'renewal-storm', 'revocation', 'mass-expiry'] as const;

/** Flag names, help and completion; values are checked by the simulator's own parseSimulateArgs. */
export const SIMULATE = defineCommand({
  name: 'simulate',
  summary: 'Fleet simulator: enrolls N devices, connects and publishes; exits 0 when every verdict of its scenario passes.',
  flags: {
    devices: { type: 'string', value: 'N', help: 'simulated devices (1 to 200000); required except for mass-expiry', default: '2000 for mass-expiry' },
    ramp: { type: 'string', value: 'N', help: 'new devices per second', default: '100' },
    'publish-interval': { type: 'string', value: 'DURATION', help: 'time between one device\'s messages', default: '10s' },
    qos: { type: 'string', value: 'QOS', help: 'MQTT QoS of the messages', default: '1', complete: ['0', '1'] },
    'payload-bytes': { type: 'string', value: 'N', help: 'message size', default: '100' },
    duration: { type: 'string', value: 'DURATION', help: 'length of the run after the ramp', default: '60s' },
    'cert-ttl': { type: 'string', value: 'DURATION', help: 'device certificate lifetime', default: '7d (3m for mass-expiry)' },
    scenario: { type: 'string', value: 'NAME', help: 'what happens during the run', default: 'steady', complete: SCENARIO_NAMES },
    'revoke-percent': { type: 'string', value: 'N', help: 'share of the fleet revoked in the revocation scenario, percent', default: '10' },
    'restart-hook': { type: 'string', value: 'CMD', help: 'shell command that restarts a broker the simulator did not start' },
    provisioning: { type: 'string', value: 'URL', help: 'an existing provisioning service (with --broker)' },
    broker: { type: 'string', value: 'URL', help: 'an existing broker (with --provisioning)' },
    'data-dir': { type: 'string', value: 'DIR', help: 'the existing deployment\'s data dir, to mint tokens', complete: 'dir' },
    'admin-token': { type: 'string', value: 'T', help: 'admin token of an existing deployment (with --ca)', secret: true },
    ca: { type: 'string', value: 'FILE', help: 'trust bundle of an existing deployment (with --admin-token)', complete: 'file' },
    identities: { type: 'string', value: 'DIR', help: 'keep device identities here and reuse them next run', complete: 'dir' },
    workers: { type: 'string', value: 'N', help: 'worker threads', default: 'one per CPU' },
    report: { type: 'string', value: 'DIR', help: 'write summary.json and report.html here', complete: 'dir' },
    prefix: { type: 'string', value: 'NAME', help: 'device ids are NAME-<n>', default: 'sim' },
    'device-model': { type: 'string', value: 'MODEL', help: 'lean: SDK enrollment and identity, a minimal MQTT client; sdk: the full device SDK', default: 'lean (sdk for renewal-storm and mass-expiry)', complete: ['lean', 'sdk'] },
    'renewal-path': { type: 'string', value: 'PATH', help: 'how SDK devices renew: inband (over MQTT through the broker, HTTPS as fallback) or https (/v1/renew only)', default: 'inband', complete: ['inband', 'https'] },
    'probe-revocation': { type: 'boolean', help: 'revoke one extra device once the fleet is up and time its disconnect' },
  },
  notes: ['Without --provisioning and --broker the simulator starts its own services.'],
});
