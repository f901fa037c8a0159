export { startBroker, type BrokerOptions, type RunningBroker } from './server/start-broker.js';
export { TrustedProxies } from './ingress/trusted-proxies.js';
export { DEFAULT_CLIENT_LIMITS, type ClientLimits } from './limits/client-limits.js';
export { ClusterStartError, parseRedisUrl, redactRedisUrl } from './cluster/redis-cluster.js';
export { FORWARDED_CERT_FORMATS, type ForwardedCertFormat } from './ingress/forwarded-cert-header.js';
export type { Renewer, RenewalRequest } from './renewal/renewer.js';
export { openRenewalRelay, type RenewalRelay, type RenewalRelayOptions } from './renewal/relay-client.js';
export { checkRelayOptions, RelayConfigError } from './renewal/relay-config.js';
