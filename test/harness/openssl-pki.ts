import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openssl } from './openssl.js';

/** Runs openssl and throws with its output when it fails, so a broken fixture never passes as a product answer. */
export async function mustOpenssl(args: string[], input?: string | Buffer): Promise<string> {
  const r = await openssl(args, input);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.code}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** How to make a key file with the real openssl CLI; each entry is one openssl invocation. */
export type KeyRecipe = (keyFile: string, scratch: string) => string[][];

export const KEY_RECIPES = {
  'P-192': (key) => [['ecparam', '-name', 'prime192v1', '-genkey', '-noout', '-out', key]],
  'P-256': (key) => [['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]],
  Ed448: (key) => [['genpkey', '-algorithm', 'ed448', '-out', key]],
  'DSA-2048': (key, scratch) => [
    ['genpkey', '-genparam', '-algorithm', 'DSA', '-pkeyopt', 'dsa_paramgen_bits:2048', '-out', `${scratch}.params`],
    ['genpkey', '-paramfile', `${scratch}.params`, '-out', key],
  ],
} satisfies Record<string, KeyRecipe>;

/**
 * A key made with `openssl` and a DER PKCS#10 for it made with `openssl req -new`.
 * `reqArgs` adds to the req command line (`-sha1`, `-addext ...`).
 */
export async function opensslCsr(dir: string, name: string, recipe: KeyRecipe, reqArgs: string[] = []): Promise<{ der: Buffer; keyFile: string }> {
  const keyFile = join(dir, `${name}.key`);
  for (const args of recipe(keyFile, join(dir, name))) await mustOpenssl(args);
  const csrFile = join(dir, `${name}.csr.der`);
  await mustOpenssl(['req', '-new', '-key', keyFile, '-subj', '/CN=ignored', ...reqArgs, '-outform', 'DER', '-out', csrFile]);
  return { der: readFileSync(csrFile), keyFile };
}

export interface ForeignLeaf {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/**
 * A throwaway CA made with openssl and a client certificate it signs that looks exactly like
 * one of ours (clientAuth, CA:false, one spiffe URI SAN, the given serial): only the issuer
 * differs, so the service has nothing but the chain to refuse it on.
 */
export async function foreignClientCertificate(dir: string, opts: { uri: string; serialHex: string; subject: string }): Promise<ForeignLeaf> {
  const caKey = join(dir, 'foreign-ca.key');
  const caCert = join(dir, 'foreign-ca.pem');
  await mustOpenssl([
    'req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', caKey, '-out', caCert, '-days', '2',
    '-subj', '/CN=tlsfleet intermediate CA/O=tlsfleet.local',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const leafKey = join(dir, 'foreign-leaf.key');
  const leafCsr = join(dir, 'foreign-leaf.csr');
  const leafCert = join(dir, 'foreign-leaf.pem');
  const ext = join(dir, 'foreign-leaf.ext');
  writeFileSync(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=clientAuth',
      `subjectAltName=URI:${opts.uri}`,
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      '',
    ].join('\n'),
  );
  await mustOpenssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', leafKey, '-out', leafCsr, '-subj', `/CN=${opts.subject}`]);
  await mustOpenssl(['x509', '-req', '-in', leafCsr, '-CA', caCert, '-CAkey', caKey, '-set_serial', `0x${opts.serialHex}`, '-days', '1', '-extfile', ext, '-out', leafCert]);
  return { caPem: readFileSync(caCert, 'utf8'), certPem: readFileSync(leafCert, 'utf8'), keyPem: readFileSync(leafKey, 'utf8') };
}

/** `openssl x509 -text` of the first certificate in a PEM file. */
export function certText(file: string): Promise<string> {
  return mustOpenssl(['x509', '-in', file, '-noout', '-text']);
}
