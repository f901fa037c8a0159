import { once } from 'node:events';
import { isValidName } from '@tlsfleet/common';
import { auditEntry, DataDir, openStore } from '@tlsfleet/provisioning';
import { positiveInt, required } from '../args.js';
import { UsageError } from '../usage-error.js';
import { resolveFlags } from '../config/resolve-flags.js';
import { AUDIT } from '../definitions/offline-commands.js';
import { storeUrlOf } from '../store-url.js';

/** Records read per query: the same bound as one page of GET /v1/audit at its largest. */
const BATCH = 1000;

/**
 * Prints the audit trail as JSON lines (the entries of GET /v1/audit), oldest first, read
 * directly from the store: it works with the service stopped. `--after ID` resumes after the
 * record with that id; `--limit N` stops after N records.
 */
export async function auditCommand(argv: string[]): Promise<number> {
  const f = resolveFlags(AUDIT, argv);
  const dir = required(f['data-dir'], '--data-dir');
  if (f.device !== undefined && !isValidName(f.device)) throw new UsageError(`--device ${JSON.stringify(f.device)} is not a valid device id`);
  const limit = positiveInt(f.limit, '--limit', Number.POSITIVE_INFINITY);
  let afterId = positiveInt(f.after, '--after', 0, 0);
  const storeUrl = storeUrlOf(f);
  const dataDir = DataDir.open(dir);
  const store = await openStore(storeUrl, dataDir.path('database'));
  try {
    for (let printed = 0; printed < limit; ) {
      const rows = await store.listAuditPage({ afterId, limit: Math.min(BATCH, limit - printed), deviceId: f.device });
      if (rows.length === 0) break;
      const text = rows.map((r) => `${JSON.stringify(auditEntry(r))}\n`).join('');
      if (!process.stdout.write(text)) await once(process.stdout, 'drain');
      printed += rows.length;
      afterId = rows.at(-1)?.id ?? afterId;
    }
    return 0;
  } finally {
    await store.close();
  }
}
