import { createPrivateKey, generatePrimeSync, randomBytes, type KeyObject } from 'node:crypto';

/**
 * An RSA private key with a `modulusBits` modulus and a random odd public exponent of
 * `exponentBits` bits, which Node's generateKeyPair cannot make (its exponent is a
 * number). An exponent nearly as long as the modulus makes each verification cost
 * milliseconds: the key the issue-19 attack used. For the benchmark and tests.
 */
export function rsaKeyWithExponent(modulusBits: number, exponentBits: number): KeyObject {
  for (;;) {
    const p = generatePrimeSync(modulusBits / 2, { bigint: true });
    const q = generatePrimeSync(modulusBits / 2, { bigint: true });
    const n = p * q;
    if (p === q || n.toString(2).length !== modulusBits) continue;
    const phi = (p - 1n) * (q - 1n);
    const e = (BigInt(`0x${randomBytes(Math.ceil(exponentBits / 8)).toString('hex')}`) % 2n ** BigInt(exponentBits)) | 1n | (1n << BigInt(exponentBits - 1));
    const d = inverse(e, phi);
    if (d === undefined) continue;
    const b64 = (x: bigint) => Buffer.from(x.toString(16).padStart(Math.ceil(x.toString(16).length / 2) * 2, '0'), 'hex').toString('base64url');
    const jwk = { kty: 'RSA', n: b64(n), e: b64(e), d: b64(d), p: b64(p), q: b64(q), dp: b64(d % (p - 1n)), dq: b64(d % (q - 1n)), qi: b64(inverse(q, p) as bigint) };
    return createPrivateKey({ key: jwk, format: 'jwk' });
  }
}

/** a⁻¹ mod m by the extended Euclidean algorithm; undefined when gcd(a, m) ≠ 1. */
function inverse(a: bigint, m: bigint): bigint | undefined {
  let [r0, r1, s0, s1] = [a % m, m, 1n, 0n];
  while (r1 !== 0n) {
    const k = r0 / r1;
    [r0, r1, s0, s1] = [r1, r0 - k * r1, s1, s0 - k * s1];
  }
  return r0 === 1n ? ((s0 % m) + m) % m : undefined;
}
