import { X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { identifyPeer, type PeerCertificate, type TlsfleetError } from '@tlsfleet/common';
import { authorityFromDataDir } from '../data-dir-authority.js';
import { DataDir } from '../data-dir.js';
import { initDataDir } from '../init.js';
import { SqliteStore } from '../storage/sqlite-store.js';
import type { Authority } from './authority.js';
import type { CsrParts } from './csr.js';
import { makeTestCsr } from './csr.fixture.js';
import { rsaKeyWithExponent } from '../../../bench/src/provisioning/rsa-key-with-exponent.js';
import { verifyPossession } from './verify-possession.js';

const TD = 'fleet.test';

/** 'ok' or the code a step refused with. */
const codeOf = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (err: TlsfleetError) => err.code);

/** Issue 19 item 2: no refusal an anonymous client can cause reaches the signature check. */
describe('Authority checks the cheapest things first', () => {
  let hugeExponentKey: KeyObject;
  let dir: string;
  let store: SqliteStore;
  let authority: Authority;
  let verified: number;

  beforeAll(() => {
    // RSA-3072 with a ~3000-bit public exponent: milliseconds per verification.
    hugeExponentKey = rsaKeyWithExponent(3072, 3000);
  });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tlsfleet-step-order-'));
    await initDataDir({ dataDir: join(dir, 'data'), trustDomain: TD });
    const dd = DataDir.open(join(dir, 'data'));
    store = SqliteStore.open(dd.path('database'));
    verified = 0;
    const counted = (csr: CsrParts) => {
      verified++;
      return verifyPossession(csr);
    };
    authority = authorityFromDataDir(dd, store, { verifyPossession: counted });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const mint = (subject: string) => authority.mintToken({ subject, createdBy: 'test' }).then((t) => t.token);
  const madeUpToken = 'tf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

  it('refuses a huge-exponent RSA-3072 CSR with a made-up token as invalid_token without verifying its signature', async () => {
    expect(await codeOf(authority.enroll(madeUpToken, makeTestCsr(hugeExponentKey).der))).toBe('invalid_token');
    expect(verified).toBe(0);
  });

  it('refuses a CSR whose signature does not verify as invalid_token when the token is made up: the token is judged first', async () => {
    const der = makeTestCsr().der;
    der[der.length - 1] = (der[der.length - 1] as number) ^ 1;
    expect(await codeOf(authority.enroll(madeUpToken, der))).toBe('invalid_token');
    expect(verified).toBe(0);
  });

  it('refuses the huge exponent with a valid token as key_rejected before any signature check, and the token stays unspent', async () => {
    const token = await mint('victim');
    expect(await codeOf(authority.enroll(token, makeTestCsr(hugeExponentKey).der))).toBe('key_rejected');
    expect(verified).toBe(0);
    const issued = await authority.enroll(token, makeTestCsr().der);
    expect(issued.identity.name).toBe('victim');
    expect(verified).toBe(1);
  });

  it('refuses a token already spent (token_used) without verifying the signature of the second CSR', async () => {
    const token = await mint('once');
    await authority.enroll(token, makeTestCsr().der);
    verified = 0;
    expect(await codeOf(authority.enroll(token, makeTestCsr().der))).toBe('token_used');
    expect(verified).toBe(0);
  });

  it('verifies possession before it answers an idempotent replay, so a forged CSR for the same key gets nothing', async () => {
    const token = await mint('replayer');
    const first = makeTestCsr();
    await authority.enroll(token, first.der);
    const forged = Buffer.from(makeTestCsr(first.privateKey).der);
    forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1;
    verified = 0;
    expect(await codeOf(authority.enroll(token, forged))).toBe('invalid_csr');
    expect(verified).toBe(1);
  });

  describe('renewal', () => {
    const peerOf = (pem: string): PeerCertificate => {
      const p = identifyPeer(new X509Certificate(pem), TD);
      if (typeof p === 'string') throw new Error(p);
      return p;
    };

    it('refuses a huge-exponent CSR from an authenticated device as key_rejected without verifying it', async () => {
      const issued = await authority.enroll(await mint('renewer'), makeTestCsr().der);
      verified = 0;
      expect(await codeOf(authority.renew(peerOf(issued.certificatePem), makeTestCsr(hugeExponentKey).der))).toBe('key_rejected');
      expect(verified).toBe(0);
    });

    it('refuses a revoked certificate before verifying the CSR it brings', async () => {
      const issued = await authority.enroll(await mint('gone'), makeTestCsr().der);
      await authority.revoke('gone', 'test');
      verified = 0;
      expect(await codeOf(authority.renew(peerOf(issued.certificatePem), makeTestCsr(hugeExponentKey).der))).toBe('revoked');
      expect(verified).toBe(0);
    });
  });
});
