import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API before it loads
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { createPrivateKey, createPublicKey, createHash, randomBytes, sign, verify, webcrypto, KeyObject, type JsonWebKey } from 'node:crypto';
import { derToPem, spiffeUri, type Identity } from '@tlsfleet/common';
import type { Authority } from '@tlsfleet/provisioning';

/**
 * Issuance-core benchmark: one CA, a pool of distinct P-256 CSRs made before timing,
 * and each path run sequentially on this thread, bounded by count and by time. The
 * product's own path is measured through the public Authority, given a store that keeps
 * tokens in memory (authority-in-memory.ts); the library paths below redo the same steps
 * with @peculiar/x509, asn1js and pkijs for comparison.
 */
export interface IssuanceCoreBenchOptions {
  /** An Authority over an in-memory store, which `mint` fills with one-time tokens. */
  readonly authority: Authority;
  readonly mint: (n: number) => Promise<readonly string[]>;
  /** Distinct P-256 CSRs generated before timing; default 500. */
  readonly poolSize?: number;
  /** Most operations per measured path; default 50,000. */
  readonly maxOps?: number;
  /** Most wall time per measured path, in ms; default 2,000. */
  readonly maxMs?: number;
}

export interface Rate {
  readonly ops: number;
  readonly ms: number;
  readonly opsPerSecond: number;
}

export interface IssuanceCoreBenchResult {
  readonly poolSize: number;
  /** (a) crypto.sign, ECDSA P-256 with the CA KeyObject over a TBS-sized buffer. */
  readonly rawSign: Rate;
  /** crypto.verify of a CSR signature with an already imported key: the proof-of-possession floor. */
  readonly rawVerify: Rate;
  /** (b) Authority.enroll with no store I/O: read the CSR, token, key policy, proof of possession, build and sign. */
  readonly core: Rate;
  /** createPublicKey of each CSR's key as SPKI DER (OpenSSL 3 decoder). */
  readonly importSpki: Rate;
  /** createPublicKey of each CSR's key as JWK (the product's path for P-256 and P-384). */
  readonly importJwk: Rate;
  /** WebCrypto importKey('raw') + KeyObject.from: cheaper than JWK (no full key check) but async. */
  readonly importWebCryptoRaw: Rate;
  /** (b) @peculiar/x509: Pkcs10CertificateRequest + verify() + X509CertificateGenerator.create. */
  readonly naiveLibrary: Rate;
  /** Our steps with asn1js parsing the CSR and pkijs building the TBS: what the libraries cost. */
  readonly libraryDer: Rate;
}

/** What the library paths need of the issuing CA. */
export interface BenchSigner {
  readonly privateKey: KeyObject;
  /** The CA certificate's subject Name, DER: the issuer of what it signs. */
  readonly subjectNameDer: Buffer;
  /** The CA's subjectKeyIdentifier: the authorityKeyIdentifier of what it signs. */
  readonly keyIdentifier: Buffer;
}

export interface IssuanceCoreFixture {
  readonly signer: BenchSigner;
  readonly caCertificate: x509.X509Certificate;
  readonly caPrivateKey: webcrypto.CryptoKey;
  readonly csrs: readonly Buffer[];
}

const TRUST_DOMAIN = 'tlsfleet.local';
const LIFETIME_MS = 7 * 24 * 3600_000;
const BACKDATE_MS = 5 * 60_000;
const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

export async function benchIssuanceCore(opts: IssuanceCoreBenchOptions): Promise<IssuanceCoreBenchResult> {
  const poolSize = opts.poolSize ?? 500;
  const bounds = { maxOps: opts.maxOps ?? 50_000, maxMs: opts.maxMs ?? 2_000 };
  const fixture = await makeIssuanceCoreFixture(poolSize);
  const { signer, csrs } = fixture;
  const csrAt = (i: number): Buffer => csrs[i % csrs.length] as Buffer;
  const pieces = csrs.map(csrPieces);
  const publicKeys = pieces.map((p) => createPublicKey({ key: p.jwk, format: 'jwk' }));
  const piecesAt = (i: number) => pieces[i % pieces.length] as CsrPieces;
  const tbsSized = randomBytes(400);

  return {
    poolSize,
    rawSign: measure(bounds, () => sign('sha256', tbsSized, { key: signer.privateKey, dsaEncoding: 'der' })),
    rawVerify: measure(bounds, (i) => {
      const p = piecesAt(i);
      return verify('sha256', p.info, publicKeys[i % publicKeys.length] as KeyObject, p.signature);
    }),
    core: await measureEnrollments(opts, bounds, csrAt),
    importSpki: measure(bounds, (i) => createPublicKey({ key: piecesAt(i).spki, format: 'der', type: 'spki' })),
    importJwk: measure(bounds, (i) => createPublicKey({ key: piecesAt(i).jwk, format: 'jwk' })),
    importWebCryptoRaw: await measureAsync(bounds, async (i) =>
      KeyObject.from(await webcrypto.subtle.importKey('raw', piecesAt(i).point, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify'])),
    ),
    naiveLibrary: await measureAsync(bounds, (i) => issueWithPeculiar(fixture, csrAt(i), i)),
    libraryDer: measure(bounds, (i) => issueWithAsn1jsAndPkijs(signer, csrAt(i), i)),
  };
}

/** The naive path: everything through @peculiar/x509 and WebCrypto, as a first version would. */
export async function issueWithPeculiar(fixture: IssuanceCoreFixture, csrDer: Buffer, i: number): Promise<ArrayBuffer> {
  const crypto = webcrypto;
  const csr = new x509.Pkcs10CertificateRequest(csrDer);
  if (!(await csr.verify(crypto))) throw new Error('CSR signature does not verify');
  const now = Date.now();
  const identity = deviceIdentity(i);
  const certificate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial().toString('hex'),
      subject: `CN=${identity.name}`,
      issuer: fixture.caCertificate.subject,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + LIFETIME_MS),
      publicKey: csr.publicKey,
      signingKey: fixture.caPrivateKey,
      signingAlgorithm: ECDSA_P256,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeUri(identity) }], false),
        await x509.SubjectKeyIdentifierExtension.create(csr.publicKey, false, crypto),
        new x509.AuthorityKeyIdentifierExtension(fixture.signer.keyIdentifier.toString('hex'), false),
      ],
    },
    crypto,
  );
  return certificate.rawData;
}

/**
 * Our steps and the same Node crypto calls (JWK import, verify, sign), with asn1js doing
 * the CSR parsing and pkijs the TBSCertificate: isolates what the DER libraries cost.
 */
export function issueWithAsn1jsAndPkijs(signer: BenchSigner, csrDer: Buffer, i: number): Buffer {
  const pieces = csrPieces(csrDer);
  const publicKey = createPublicKey({ key: pieces.jwk, format: 'jwk' });
  if (!verify('sha256', pieces.info, publicKey, pieces.signature)) throw new Error('CSR signature does not verify');
  if (publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('not a P-256 key');

  const now = Date.now();
  const identity = deviceIdentity(i);
  const spki = pkijs.PublicKeyInfo.fromBER(pieces.spki);
  const certificate = new pkijs.Certificate();
  certificate.version = 2;
  certificate.serialNumber = new asn1js.Integer({ valueHex: randomSerial() });
  certificate.signature = new pkijs.AlgorithmIdentifier({ algorithmId: '1.2.840.10045.4.3.2' });
  certificate.issuer = pkijs.RelativeDistinguishedNames.fromBER(signer.subjectNameDer);
  certificate.subject.typesAndValues.push(new pkijs.AttributeTypeAndValue({ type: '2.5.4.3', value: new asn1js.Utf8String({ value: identity.name }) }));
  certificate.notBefore.value = new Date(now - BACKDATE_MS);
  certificate.notAfter.value = new Date(now + LIFETIME_MS);
  certificate.subjectPublicKeyInfo = spki;
  const ski = createHash('sha1').update(spki.subjectPublicKey.valueBlock.valueHexView).digest();
  certificate.extensions = [
    new pkijs.Extension({ extnID: '2.5.29.19', critical: true, extnValue: new pkijs.BasicConstraints({ cA: false }).toSchema().toBER() }),
    new pkijs.Extension({ extnID: '2.5.29.15', critical: true, extnValue: new asn1js.BitString({ valueHex: Uint8Array.of(0x80), unusedBits: 7 }).toBER() }),
    new pkijs.Extension({ extnID: '2.5.29.37', extnValue: new pkijs.ExtKeyUsage({ keyPurposes: ['1.3.6.1.5.5.7.3.2'] }).toSchema().toBER() }),
    new pkijs.Extension({ extnID: '2.5.29.17', extnValue: new pkijs.GeneralNames({ names: [new pkijs.GeneralName({ type: 6, value: spiffeUri(identity) })] }).toSchema().toBER() }),
    new pkijs.Extension({ extnID: '2.5.29.14', extnValue: new asn1js.OctetString({ valueHex: ski }).toBER() }),
    new pkijs.Extension({ extnID: '2.5.29.35', extnValue: new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: signer.keyIdentifier }) }).toSchema().toBER() }),
  ];
  const tbs = certificate.encodeTBS();
  const signature = sign('sha256', Buffer.from(tbs.toBER()), { key: signer.privateKey, dsaEncoding: 'der' });
  const der = new asn1js.Sequence({ value: [tbs, certificate.signature.toSchema(), new asn1js.BitString({ valueHex: signature })] });
  return Buffer.from(der.toBER());
}

interface CsrPieces {
  readonly info: Buffer;
  readonly spki: Buffer;
  readonly signature: Buffer;
  /** The uncompressed EC point, SEC 1 §2.3.3. */
  readonly point: Buffer;
  readonly jwk: JsonWebKey;
}

/** asn1js reading of a P-256 CSR: the signed bytes, the SPKI, the signature and the key as JWK. */
function csrPieces(csrDer: Buffer): CsrPieces {
  const parsed = asn1js.fromBER(csrDer);
  if (parsed.offset !== csrDer.length || !(parsed.result instanceof asn1js.Sequence)) throw new Error('malformed CSR');
  const [info, , signature] = parsed.result.valueBlock.value as [asn1js.Sequence, asn1js.Sequence, asn1js.BitString];
  const spki = info.valueBlock.value[2] as asn1js.Sequence;
  const point = Buffer.from((spki.valueBlock.value[1] as asn1js.BitString).valueBlock.valueHexView);
  return {
    info: Buffer.from(info.valueBeforeDecodeView),
    spki: Buffer.from(spki.valueBeforeDecodeView),
    signature: Buffer.from(signature.valueBlock.valueHexView),
    point,
    jwk: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') },
  };
}

function deviceIdentity(i: number): Identity {
  return { kind: 'device', name: `device-${i}`, trustDomain: TRUST_DOMAIN };
}

/** A throwaway P-256 CA and `poolSize` CSRs with distinct keys. */
export async function makeIssuanceCoreFixture(poolSize: number): Promise<IssuanceCoreFixture> {
  const crypto = webcrypto;
  const caKeys = (await crypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const caCertificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial().toString('hex'),
      name: 'CN=bench issuing CA',
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + 24 * 3600_000),
      keys: caKeys,
      signingAlgorithm: ECDSA_P256,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', caKeys.privateKey));
  const ski = caCertificate.getExtension(x509.SubjectKeyIdentifierExtension);
  if (!ski) throw new Error('the bench CA has no subjectKeyIdentifier');
  const signer: BenchSigner = {
    privateKey: createPrivateKey(derToPem(pkcs8, 'PRIVATE KEY')),
    subjectNameDer: Buffer.from(caCertificate.subjectName.toArrayBuffer()),
    keyIdentifier: Buffer.from(ski.keyId, 'hex'),
  };

  const csrs: Buffer[] = [];
  for (let i = 0; i < poolSize; i++) {
    const keys = (await crypto.subtle.generateKey(ECDSA_P256, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    // What a device might ask for; the core ignores the subject and every requested extension.
    const csr = await x509.Pkcs10CertificateRequestGenerator.create(
      {
        name: `CN=device-${i}`,
        keys,
        signingAlgorithm: ECDSA_P256,
        extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: `device-${i}.example` }], false)],
      },
      crypto,
    );
    csrs.push(Buffer.from(csr.rawData));
  }
  return { signer, caCertificate, caPrivateKey: caKeys.privateKey, csrs };
}

type Bounds = { readonly maxOps: number; readonly maxMs: number };

const WARM_UP_OPS = 100;

/** Runs `op` after a short warm-up until maxOps operations or maxMs have passed. */
function measure(bounds: Bounds, op: (i: number) => unknown): Rate {
  for (let i = 0; i < WARM_UP_OPS; i++) op(i);
  const start = performance.now();
  let ops = 0;
  while (ops < bounds.maxOps && performance.now() - start < bounds.maxMs) op(ops++);
  return rate(ops, performance.now() - start);
}

async function measureAsync(bounds: Bounds, op: (i: number) => Promise<unknown>): Promise<Rate> {
  for (let i = 0; i < WARM_UP_OPS; i++) await op(i);
  const start = performance.now();
  let ops = 0;
  while (ops < bounds.maxOps && performance.now() - start < bounds.maxMs) await op(ops++);
  return rate(ops, performance.now() - start);
}

/**
 * Authority.enroll after a short warm-up, one CSR of the pool per enrollment, until maxOps
 * or maxMs. The tokens are minted before timing: each enrollment spends one.
 */
async function measureEnrollments(opts: IssuanceCoreBenchOptions, bounds: Bounds, csrAt: (i: number) => Buffer): Promise<Rate> {
  const tokens = await opts.mint(WARM_UP_OPS + bounds.maxOps);
  for (let i = 0; i < WARM_UP_OPS; i++) await opts.authority.enroll(tokens[i] as string, csrAt(i));
  const start = performance.now();
  let ops = 0;
  while (ops < bounds.maxOps && performance.now() - start < bounds.maxMs) {
    await opts.authority.enroll(tokens[WARM_UP_OPS + ops] as string, csrAt(ops));
    ops++;
  }
  return rate(ops, performance.now() - start);
}

/** Serial number content octets as the product makes them: 16 random bytes, positive, never minimally short. */
function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = ((serial[0] as number) & 0x7f) | 0x40;
  return serial;
}

function rate(ops: number, ms: number): Rate {
  return { ops, ms: Math.round(ms), opsPerSecond: Math.round((ops / ms) * 1000) };
}
