/** The log flags of the server commands (cli/src/service-logs.ts). */
const LOG_USAGE = '[--log-level info (trace|debug|info|warn|error|fatal|silent; or TLSFLEET_LOG_LEVEL)] [--log-format json|pretty (default: pretty on a terminal, else json)]';

/** One line per command, printed by `tlsfleet --help` and with usage errors. */
export const USAGE = {
  init: 'tlsfleet init --data-dir DIR [--trust-domain TD] [--server-name NAME]...',
  provisioning:
    'tlsfleet provisioning --data-dir DIR [--host H] [--port 8443] [--store sqlite|postgres://USER@HOST:PORT/DB] [--max-inflight 64] [--renewal-reserve 16 (places only certificate-authenticated renewals take)] [--max-inflight-per-client 8 (0: off)] [--client-rate 20] [--client-burst 40] [--body-timeout 5s] [--idle-timeout 15s (no TLS handshake / no request)] [--max-connections 10000 (kept below the open-file limit)] [--crl-validity 24h] [--metrics-port P (/metrics on 127.0.0.1 too)] [--public-url https://HOST[:PORT] (certificates name <it>/v1/crl as CRL Distribution Point; default none)] [--retention 90d (expired certificates and spent tokens older than this are deleted; 0|off: keep)] ' + LOG_USAGE,
  broker:
    'tlsfleet broker --data-dir DIR [--host H] [--port 8883] [--ws-port P] [--health-port P] [--acl FILE] [--crl-url URL] [--crl-interval 1s] [--max-packet-size 131072] [--max-connections N (default: below the open-file limit, at most 100000)] [--max-connections-per-address N (off: CGNAT shares addresses)] [--max-queued-messages 1000] [--max-subscriptions-per-client 100] [--max-retained-bytes-per-client 1048576] [--max-retained-messages-per-client 100] [--max-inflight-qos2 100] [--max-subscriber-backlog 1048576 (bytes, per device)] [--connect-timeout 10s] [--proxy-protocol] [--ws-forwarded-cert nginx|envoy] [--trusted-proxy CIDR...] [--cluster redis://host:port|rediss://host:port [--cluster-ca FILE] [--cluster-timeout 30s]] [--tls-session-tickets] ' + LOG_USAGE,
  token: 'tlsfleet token --data-dir DIR (--device ID | --service NAME) [--ttl 24h] [--cert-ttl 7d] [--store postgres://...]',
  revoke: 'tlsfleet revoke --data-dir DIR --device ID [--store postgres://...]',
  audit: 'tlsfleet audit --data-dir DIR [--device ID] [--limit N] [--after ID (resume after this record id)] [--store postgres://...]  # JSON lines, oldest first',
  device: 'tlsfleet device enroll (--token T | --token-file FILE) --provisioning URL --state DIR --bootstrap-ca FILE | tlsfleet device run --state DIR --broker URL [--heartbeat 30s]',
  simulate:
    'tlsfleet simulate --devices N [--ramp 100] [--publish-interval 10s] [--qos 1] [--payload-bytes 100] [--duration 60s] [--cert-ttl 7d] [--scenario steady|reconnect-storm|renewal-storm|revocation] [--revoke-percent 10] [--restart-hook CMD] [--provisioning URL --broker URL (--data-dir DIR | --admin-token T --ca FILE)] [--identities DIR] [--workers N] [--report DIR] [--prefix sim]',
  ca: 'tlsfleet ca request --data-dir DIR | tlsfleet ca sign --csr FILE --root-cert FILE --root-key FILE --out FILE [--lifetime 1825d] [--subject DN] [--replaces FILE] | tlsfleet ca install --data-dir DIR --cert FILE [--store postgres://...] | tlsfleet ca retire --data-dir DIR [--force] [--store postgres://...] | tlsfleet ca new-root --out DIR [--trust-domain TD] [--lifetime 10y] | tlsfleet ca trust-root --data-dir DIR --cert FILE | tlsfleet ca untrust-root --data-dir DIR --cert FILE [--force] [--store postgres://...]',
  dev: 'tlsfleet dev [--data-dir .tlsfleet] [--port 8443] [--broker-port 8883] [--health-port 9883] ' + LOG_USAGE,
} as const;
