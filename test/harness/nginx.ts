import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startListeningChild, type ListeningChild } from './listening-child.js';
import { freePort } from './free-port.js';

export interface Nginx extends ListeningChild {
  /** The mTLS frontend's port on 127.0.0.1. */
  readonly port: number;
  /** The generated nginx.conf, as docs/operations.md shows it. */
  readonly config: string;
}

export interface NginxOptions {
  /** nginx's prefix: config, pid, logs and temp paths all go here. */
  dir: string;
  /** The broker's forwarded-certificate WebSocket port on 127.0.0.1. */
  backendPort: number;
  /** Trust bundle for client certificates and for the broker's server certificate. */
  caFile: string;
  /** nginx's own server certificate and key (the data dir's broker.pem / broker.key). */
  certFile: string;
  keyFile: string;
  /** Source address of nginx's upstream connections; default 127.0.0.2, so they differ from a test's own. */
  bindAddress?: string;
}

/** The nginx.conf of the forwarded-certificate set-up: mTLS at nginx, wss to the broker with the leaf in X-SSL-Client-Cert. */
export function forwardedCertNginxConfig(o: NginxOptions & { port: number }): string {
  const tmp = join(o.dir, 'tmp');
  return `# worker as root only because the tests run as root and the files are 0600 in a 0700 temp dir
${process.getuid?.() === 0 ? 'user root root;\n' : ''}worker_processes 1;
pid ${join(o.dir, 'nginx.pid')};
error_log ${join(o.dir, 'error.log')} info;
events { worker_connections 128; }
http {
    access_log ${join(o.dir, 'access.log')};
    client_body_temp_path ${tmp}/client;
    proxy_temp_path ${tmp}/proxy;
    fastcgi_temp_path ${tmp}/fastcgi;
    uwsgi_temp_path ${tmp}/uwsgi;
    scgi_temp_path ${tmp}/scgi;

    map $http_upgrade $connection_upgrade { default upgrade; '' close; }

    server {
        listen 127.0.0.1:${o.port} ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate ${o.certFile};
        ssl_certificate_key ${o.keyFile};
        ssl_verify_client on;                      # devices must present a certificate
        ssl_client_certificate ${o.caFile};
        ssl_verify_depth 3;                        # leaf, intermediate, root

        location / {
            proxy_pass https://127.0.0.1:${o.backendPort};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            # Replaces any X-SSL-Client-Cert the client sent.
            proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_bind ${o.bindAddress ?? '127.0.0.2'};
            proxy_ssl_verify on;                   # encrypted and verified to the broker
            proxy_ssl_trusted_certificate ${o.caFile};
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
            proxy_ssl_protocols TLSv1.2 TLSv1.3;
            proxy_read_timeout 2m;                 # above the devices' MQTT keepalive
            proxy_send_timeout 2m;
        }
    }
}
`;
}

/**
 * Debian's nginx terminating the devices' mTLS in front of the broker's WebSocket port,
 * forwarding the verified leaf in X-SSL-Client-Cert. Runs in the foreground as our child,
 * everything under `dir`; ready once its port accepts a connection.
 */
export async function startNginx(opts: NginxOptions): Promise<Nginx> {
  const port = await freePort();
  mkdirSync(join(opts.dir, 'tmp'), { recursive: true });
  const config = forwardedCertNginxConfig({ ...opts, port });
  const file = join(opts.dir, 'nginx.conf');
  writeFileSync(file, config);
  // Debian installs it in /usr/sbin, which a non-root PATH often lacks.
  const bin = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
  const args = ['-p', opts.dir, '-c', file, '-e', join(opts.dir, 'error.log'), '-g', 'daemon off;'];
  return { ...(await startListeningChild('nginx', bin, args, port)), port, config };
}
