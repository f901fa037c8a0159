import { pino } from 'pino';
import { startBroker } from '@tlsfleet/broker';

// The broker in a process of its own, so the benchmark can read its CPU time and memory
// from /proc and profile it (node --cpu-prof). Logs at warn unless TLSFLEET_LOG_LEVEL says.
// Usage: node serve-broker.js DATA_DIR [--tls-session-tickets] [--no-publish-relay]   → prints "listening PORT"; SIGTERM stops it.
const running = await startBroker({
  dataDir: process.argv[2] as string,
  host: '127.0.0.1',
  port: 0,
  tlsSessionTickets: process.argv.includes('--tls-session-tickets'),
  publishRelay: !process.argv.includes('--no-publish-relay'),
  logger: pino({ name: 'broker', level: process.env.TLSFLEET_LOG_LEVEL ?? 'warn' }),
});
process.stdout.write(`listening ${running.port}\n`);
// process.exit (not a signal death) so that --cpu-prof writes its profile.
process.once('SIGTERM', () => void running.close(1000).then(() => process.exit(0)));
