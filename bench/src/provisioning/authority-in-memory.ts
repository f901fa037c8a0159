import { authorityFromDataDir, type Authority, type DataDir, type Store } from '@tlsfleet/provisioning';

type TokenRecord = Awaited<ReturnType<Store['findToken']>>;

/**
 * The data dir's Authority over a store that keeps its one-time tokens in a Map and records
 * nothing else: Authority.enroll then costs what issuance itself costs (read the CSR, find
 * the token, key policy, proof of possession, build and sign), without the database's
 * transaction. Only what minting and enrolling call is there; anything else throws.
 */
export function authorityInMemory(dataDir: DataDir): { authority: Authority; mint: (n: number) => Promise<string[]> } {
  const tokens = new Map<string, NonNullable<TokenRecord>>();
  const used: Partial<Store> = {
    createToken: async (token) => {
      tokens.set(token.hash, { ...token, consumedAt: undefined, consumedSpkiHash: undefined, consumedSerial: undefined, cancelledAt: undefined });
    },
    findToken: async (hash) => tokens.get(hash),
    findDevice: async () => undefined,
    recordEnrollment: async (enrollment) => tokens.delete(enrollment.tokenHash),
  };
  const store = new Proxy(used, {
    get: (target, name) =>
      target[name as keyof Store] ??
      (() => {
        throw new Error(`the in-memory bench store has no ${String(name)}`);
      }),
  }) as Store;
  const authority = authorityFromDataDir(dataDir, store);
  let minted = 0;
  const mint = async (n: number) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push((await authority.mintToken({ subject: `device-${minted++}`, createdBy: 'bench' })).token);
    return out;
  };
  return { authority, mint };
}
