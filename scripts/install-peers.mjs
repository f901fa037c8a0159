#!/usr/bin/env node
// pretest: make sure the real peers the tests drive are on this machine, installing the
// missing ones from Debian's packages. Tests never skip for a missing peer: if one cannot
// be installed, this says which and fails, so `npm test` stops with the reason.
import { spawnSync } from 'node:child_process';

/** Debian package → a command that proves it is installed. */
const PEERS = [
  { pkg: 'openssl', bin: 'openssl', why: 'verifies every certificate, CSR, CRL and PKCS#7 we emit' },
  { pkg: 'util-linux', bin: 'prlimit', why: 'raises the open-file limit at start, and runs a service under a lowered one in test/provisioning-attack-idle-connections.test.ts' },
  { pkg: 'curl', bin: 'curl', why: 'runs the README enrollment recipe' },
  { pkg: 'mosquitto-clients', bin: 'mosquitto_pub', why: 'real MQTT clients (mosquitto_pub/mosquitto_sub) against the broker' },
  { pkg: 'mosquitto', bin: '/usr/sbin/mosquitto', why: 'the reference broker in npm run bench:broker' },
  { pkg: 'chromium', bin: 'chromium', why: 'renders the simulator report.html headless to check that its charts drew' },
  // The glob is expanded by sh: Debian keeps the server binaries under the major version.
  { pkg: 'postgresql', bin: '/usr/lib/postgresql/*/bin/initdb', why: 'a throwaway PostgreSQL server (initdb + postgres on 127.0.0.1) for the PostgreSQL store tests' },
  { pkg: 'haproxy', bin: '/usr/sbin/haproxy', why: 'a real TCP-passthrough load balancer (mode tcp, send-proxy-v2) in front of the broker for the PROXY protocol tests' },
  { pkg: 'nginx', bin: '/usr/sbin/nginx', why: 'a real TLS-terminating ingress (mTLS, X-SSL-Client-Cert to the wss port) for the --ws-forwarded-cert tests' },
  { pkg: 'sqlite3', bin: 'sqlite3', why: 'runs the SQLite backup and restore recipes of docs/operations.md (test/docs-operations-backup.test.ts)' },
  { pkg: 'redis-server', bin: 'redis-server', why: 'a throwaway Redis (127.0.0.1, no persistence) shared by two brokers for the --cluster tests' },
  { pkg: 'zsh', bin: 'zsh', why: 'checks the generated zsh completion script (test/cli-help.test.ts)' },
  { pkg: 'systemd', bin: 'systemd-analyze', why: 'checks the units in deploy/systemd/ (systemd-analyze verify and security) in test/systemd-units.test.ts' },
  // A module, not a command: its file proves the package is there, for Debian's own /usr/bin/python3.
  { pkg: 'python3-paho-mqtt', bin: '/usr/lib/python3/dist-packages/paho/mqtt/client.py', why: 'the Eclipse Paho Python client, for the Paho overlapping-subscriptions QoS check (test/broker-qos-grant.test.ts)' },
];

const has = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
let missing = PEERS.filter((p) => !has(p.bin));
if (missing.length === 0) process.exit(0);

const names = missing.map((p) => p.pkg);
console.log(`install-peers: installing ${names.join(' ')} from Debian packages`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const asRoot = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
const run = (args) => spawnSync(asRoot[0] ?? args[0], asRoot.length ? [...asRoot.slice(1), ...args] : args.slice(1), { stdio: 'inherit', env });
run(['apt-get', 'update', '-q']);
run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...names]);

missing = missing.filter((p) => !has(p.bin));
if (missing.length > 0) {
  for (const p of missing) console.error(`install-peers: could not install ${p.pkg} (needed: ${p.why})`);
  console.error('install-peers: the tests need these peers; install them and run npm test again');
  process.exit(1);
}
console.log('install-peers: all peers present');
