import 'reflect-metadata'; // @peculiar/x509 needs the Reflect metadata API before it loads
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { createPublicKey, createHash, randomBytes, sign, verify, webcrypto, KeyObject, type JsonWebKey } from 'node:crypto';
import { derToPem, spiffeUri, type Identity } from '@tlsfleet/common';
import { buildDeviceCertificate, checkKeyPolicy, loadCaSigner, parseCsr, randomSerial, readCsr, verifyPossession, type CaSigner, type ParsedCsr } from '../index.js';

/**
 * Issuance-core benchmark: one CA, a pool of distinct P-256 CSRs made before timing,
 * and each path run sequentially on this thread, bounded by count and by time.
 */
export interface IssuanceCoreBenchOptions {
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
  /** (c) readCsr + checkKeyPolicy + verifyPossession + buildDeviceCertificate; measured right after (a), before the heap grows. */
  readonly core: Rate;
  /** The same steps in the order before issue 19 (verify, then policy), interleaved with `core` in rounds. */
  readonly coreBefore: Rate;
  /** createPublicKey of each CSR's key as SPKI DER (OpenSSL 3 decoder). */
  readonly importSpki: Rate;
  /** createPublicKey of each CSR's key as JWK (parseCsr's path for P-256/P-384). */
  readonly importJwk: Rate;
  /** WebCrypto importKey('raw') + KeyObject.from: cheaper than JWK (no full key check) but async. */
  readonly importWebCryptoRaw: Rate;
  /** (b) @peculiar/x509: Pkcs10CertificateRequest + verify() + X509CertificateGenerator.create. */
  readonly naiveLibrary: Rate;
  /** Our steps with asn1js parsing the CSR and pkijs building the TBS: what the libraries cost. */
  readonly libraryDer: Rate;
}

export interface IssuanceCoreFixture {
  readonly signer: CaSigner;
  readonly caCertificate: x509.X509Certificate;
  readonly caPrivateKey: webcrypto.CryptoKey;
  readonly csrs: readonly Buffer[];
}

const TRUST_DOMAIN = 'tlsfleet.local';
const LIFETIME_MS = 7 * 24 * 3600_000;
const BACKDATE_MS = 5 * 60_000;
const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

export async function benchIssuanceCore(opts: IssuanceCoreBenchOptions = {}): Promise<IssuanceCoreBenchResult> {
  const poolSize = opts.poolSize ?? 500;
  const bounds = { maxOps: opts.maxOps ?? 50_000, maxMs: opts.maxMs ?? 2_000 };
  const fixture = await makeIssuanceCoreFixture(poolSize);
  const { signer, csrs } = fixture;
  const csrAt = (i: number): Buffer => csrs[i % csrs.length] as Buffer;
  const parsed = await Promise.all(csrs.map((der) => parseCsr(der)));
  const pieces = csrs.map(csrPieces);
  const piecesAt = (i: number) => pieces[i % pieces.length] as CsrPieces;
  const tbsSized = randomBytes(400);

  return {
    poolSize,
    rawSign: measure(bounds, () => sign('sha256', tbsSized, { key: signer.privateKey, dsaEncoding: 'der' })),
    rawVerify: measure(bounds, (i) => {
      const p = piecesAt(i);
      return verify('sha256', p.info, (parsed[i % parsed.length] as ParsedCsr).publicKey, p.signature);
    }),
    ...(await measureInterleaved(bounds, (i) => issueWithCore(signer, csrAt(i), i), (i) => issueWithCoreBefore(signer, csrAt(i), i))),
    importSpki: measure(bounds, (i) => createPublicKey({ key: piecesAt(i).spki, format: 'der', type: 'spki' })),
    importJwk: measure(bounds, (i) => createPublicKey({ key: piecesAt(i).jwk, format: 'jwk' })),
    importWebCryptoRaw: await measureAsync(bounds, async (i) =>
      KeyObject.from(await webcrypto.subtle.importKey('raw', piecesAt(i).point, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify'])),
    ),
    naiveLibrary: await measureAsync(bounds, (i) => issueWithPeculiar(fixture, csrAt(i), i)),
    libraryDer: measure(bounds, (i) => issueWithAsn1jsAndPkijs(signer, csrAt(i), i)),
  };
}

/** The issuance core as the authority runs it, cheapest check first, minus the token lookup and the store's record step. */
export async function issueWithCore(signer: CaSigner, csrDer: Buffer, i: number): Promise<Buffer> {
  const csr = readCsr(csrDer);
  checkKeyPolicy(csr.key);
  await verifyPossession(csr);
  return buildFor(signer, csr.spkiDer, i);
}

/** The core in its order before issue 19: proof of possession first, then key policy on the imported key. */
export async function issueWithCoreBefore(signer: CaSigner, csrDer: Buffer, i: number): Promise<Buffer> {
  const csr = await parseCsr(csrDer);
  checkKeyPolicy(csr.publicKey);
  return buildFor(signer, csr.spkiDer, i);
}

function buildFor(signer: CaSigner, spkiDer: Buffer, i: number): Buffer {
  const now = Date.now();
  return buildDeviceCertificate({
    issuer: signer,
    subjectPublicKeyDer: spkiDer,
    identity: deviceIdentity(i),
    serial: randomSerial(),
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + LIFETIME_MS),
  });
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
export function issueWithAsn1jsAndPkijs(signer: CaSigner, csrDer: Buffer, i: number): Buffer {
  const pieces = csrPieces(csrDer);
  const publicKey = createPublicKey({ key: pieces.jwk, format: 'jwk' });
  if (!verify('sha256', pieces.info, publicKey, pieces.signature)) throw new Error('CSR signature does not verify');
  checkKeyPolicy(publicKey);

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

/** A throwaway P-256 CA (loaded through loadCaSigner) and `poolSize` CSRs with distinct keys. */
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
  const signer = loadCaSigner(caCertificate.toString('pem'), derToPem(pkcs8, 'PRIVATE KEY'));

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
 * Two async paths measured in alternating rounds (a, b, b, a, ...), ten each sharing the
 * time bound, so load that comes and goes on the machine falls on both alike.
 */
async function measureInterleaved(bounds: Bounds, a: (i: number) => Promise<unknown>, b: (i: number) => Promise<unknown>): Promise<{ core: Rate; coreBefore: Rate }> {
  const ROUNDS = 10;
  const round = { maxOps: Math.ceil(bounds.maxOps / ROUNDS), maxMs: bounds.maxMs / ROUNDS };
  const totals = { a: { ops: 0, ms: 0 }, b: { ops: 0, ms: 0 } };
  for (let r = 0; r < ROUNDS; r++) {
    // ABBA order: whichever runs second in a pair does not always pay the first one's GC.
    const pair = [['a', a], ['b', b]] as const;
    for (const [key, op] of r % 2 === 0 ? pair : [pair[1], pair[0]]) {
      const got = await measureAsync(round, op);
      totals[key].ops += got.ops;
      totals[key].ms += got.ms;
    }
  }
  return { core: rate(totals.a.ops, totals.a.ms), coreBefore: rate(totals.b.ops, totals.b.ms) };
}

function rate(ops: number, ms: number): Rate {
  return { ops, ms: Math.round(ms), opsPerSecond: Math.round((ops / ms) * 1000) };
}
