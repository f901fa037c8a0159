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
  const leaf = await clientCertificateSignedBy(dir, { certFile: caCert, keyFile: caKey }, { ...opts, name: 'foreign-leaf' });
  return { caPem: readFileSync(caCert, 'utf8'), ...leaf };
}

/**
 * A client certificate of the tlsfleet profile that openssl signs with `ca`'s key.
 * `authorityKeyIdHex` writes that keyIdentifier into the AKI instead of `ca`'s SKI (a forged issuer claim).
 */
export async function clientCertificateSignedBy(
  dir: string,
  ca: { certFile: string; keyFile: string },
  opts: { uri: string; serialHex: string; subject: string; name: string; authorityKeyIdHex?: string },
): Promise<{ certPem: string; keyPem: string }> {
  const leafKey = join(dir, `${opts.name}.key`);
  const leafCsr = join(dir, `${opts.name}.csr`);
  const leafCert = join(dir, `${opts.name}.pem`);
  const ext = join(dir, `${opts.name}.ext`);
  const aki = opts.authorityKeyIdHex;
  // AuthorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier } (RFC 5280 §4.2.1.1), as DER hex.
  const akiLine = aki ? `2.5.29.35=DER:${derHex(0x30, derHex(0x80, aki))}` : 'authorityKeyIdentifier=keyid';
  writeFileSync(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=clientAuth',
      `subjectAltName=URI:${opts.uri}`,
      'subjectKeyIdentifier=hash',
      akiLine,
      '',
    ].join('\n'),
  );
  await mustOpenssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', leafKey, '-out', leafCsr, '-subj', `/CN=${opts.subject}`]);
  await mustOpenssl(['x509', '-req', '-in', leafCsr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', `0x${opts.serialHex}`, '-days', '1', '-extfile', ext, '-out', leafCert]);
  return { certPem: readFileSync(leafCert, 'utf8'), keyPem: readFileSync(leafKey, 'utf8') };
}

/** One short DER TLV (content under 128 bytes) as hex. */
function derHex(tag: number, contentHex: string): string {
  const n = contentHex.length / 2;
  if (n >= 0x80) throw new Error('derHex: content too long for a short-form length');
  return tag.toString(16).padStart(2, '0') + n.toString(16).padStart(2, '0') + contentHex;
}

/** `openssl x509 -text` of the first certificate in a PEM file. */
export function certText(file: string): Promise<string> {
  return mustOpenssl(['x509', '-in', file, '-noout', '-text']);
}

export interface ServerPki {
  /** The throwaway CA's certificate, PEM file and text. */
  caFile: string;
  caPem: string;
  certFile: string;
  keyFile: string;
}

/** A throwaway CA made with openssl and a TLS server certificate it signs for `san` (`IP:127.0.0.1`, `DNS:redis.test`). */
export async function serverCertificate(dir: string, opts: { name: string; san: string }): Promise<ServerPki> {
  const caFile = join(dir, `${opts.name}-ca.pem`);
  const caKey = join(dir, `${opts.name}-ca.key`);
  await mustOpenssl([
    'req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', caKey, '-out', caFile, '-days', '2', '-subj', `/CN=${opts.name} test CA`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const keyFile = join(dir, `${opts.name}.key`);
  const csr = join(dir, `${opts.name}.csr`);
  const certFile = join(dir, `${opts.name}.pem`);
  const ext = join(dir, `${opts.name}.ext`);
  writeFileSync(ext, ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', `subjectAltName=${opts.san}`, ''].join('\n'));
  await mustOpenssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', `/CN=${opts.name}`]);
  await mustOpenssl(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial', '0x01', '-days', '1', '-extfile', ext, '-out', certFile]);
  return { caFile, caPem: readFileSync(caFile, 'utf8'), certFile, keyFile };
}
