import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway P-256 CA made with the openssl CLI (CA:TRUE, keyCertSign, a subjectKeyIdentifier)
 * and a self-signed localhost server certificate, in a temp dir of its own. Test-only.
 */
export class OpensslTestCa {
  readonly dir: string;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'tlsfleet-test-ca-'));
    this.openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key');
    this.openssl('req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=test CA', '-days', '1', '-out', 'ca.pem', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
    this.openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'server.key');
    this.openssl('req', '-x509', '-new', '-key', 'server.key', '-subj', '/CN=localhost', '-days', '1', '-out', 'server.pem');
  }

  /** A leaf the CA signs with exactly these v3 extension lines (undefined: an X.509 v1 certificate). */
  leaf(name: string, extensions: string[] | undefined): { cert: string; key: string } {
    this.openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
    this.openssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`);
    const args = ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-out', `${name}.pem`];
    if (extensions) {
      writeFileSync(join(this.dir, `${name}.ext`), extensions.join('\n') + '\n');
      args.push('-extfile', `${name}.ext`);
    }
    this.openssl(...args);
    return { cert: this.read(`${name}.pem`), key: this.read(`${name}.key`) };
  }

  read(file: string): string {
    return readFileSync(join(this.dir, file), 'utf8');
  }

  /** Runs openssl in the CA's dir; its stdout. */
  openssl(...args: string[]): string {
    return execFileSync('openssl', args, { cwd: this.dir, stdio: 'pipe', encoding: 'utf8' });
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
