import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '@tlsfleet/common';
import { DEVICE_ERROR_CODES } from '@tlsfleet/device-sdk';
import { EXIT_CONFIG, EXIT_REENROLL } from '../device-sdk/src/agent.js';
import { LIMIT_FLAGS } from '../broker/src/limits/client-limits.js';
import { REVOCATION_REASON_CODES } from '../provisioning/src/authority/revocation-reason.js';
import { BrokerMetrics } from '../broker/src/server/metrics.js';
import { ProvisioningMetrics } from '../provisioning/src/metrics.js';

// docs/troubleshooting.md promises every stable code and every metric label with its fix.
// The codes are collected from the sources (runtime lists where they exist, otherwise a
// scan of the TypeScript with patterns that must keep finding a plausible number), so a new
// code or label value fails here until it is documented.

const ROOT = resolve(import.meta.dirname, '..');
const PACKAGES = ['broker', 'cli', 'common', 'device-sdk', 'provisioning'];

/** Production sources: no tests, fixtures or benchmarks. */
function sourceFiles(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'bench') walk(path);
      } else if (entry.name.endsWith('.ts') && !/\.(test|fixture|d)\.ts$/.test(entry.name)) {
        out.set(relative(ROOT, path), readFileSync(path, 'utf8'));
      }
    }
  };
  for (const pkg of PACKAGES) walk(join(ROOT, pkg, 'src'));
  return out;
}

const SOURCES = sourceFiles();

function source(path: string): string {
  const text = SOURCES.get(path);
  if (text === undefined) throw new Error(`${path} is gone: update this test to where its codes live now`);
  return text;
}

/** Quoted identifier-like literals ('no_cert', 'keyCompromise', '24h') in `text`. */
function literals(text: string): string[] {
  return [...text.matchAll(/'([A-Za-z0-9_]+)'/g)].map((m) => m[1]!);
}

/** Every capture group 1 of `pattern` across `texts`. */
function captures(pattern: RegExp, ...texts: string[]): string[] {
  return texts.flatMap((t) => [...t.matchAll(pattern)].map((m) => m[1]!));
}

/** The string literals of `type NAME = ...;` in `path`. */
function unionOf(path: string, name: string): string[] {
  const m = new RegExp(`type ${name} =([^;]+);`).exec(source(path));
  if (!m) throw new Error(`type ${name} not found in ${path}`);
  return literals(m[1]!);
}

/** Without `import` lines and comments, so module names and prose are not taken for codes. */
function code(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '')
    .replace(/^import .*$/gm, '');
}

const ALL = [...SOURCES.values()].join('\n');

/** Each group: where the codes come from, what was found, and the least a working scan finds. */
const GROUPS: { name: string; codes: string[]; atLeast: number }[] = [
  { name: 'provisioning API codes (ERROR_CODES)', codes: Object.keys(ERROR_CODES), atLeast: 17 },
  { name: 'device SDK codes (DEVICE_ERROR_CODES)', codes: Object.keys(DEVICE_ERROR_CODES), atLeast: 12 },
  { name: 'error classes with a fixed code', codes: captures(/readonly code = '([a-z_]+)'/g, ALL), atLeast: 5 },
  { name: 'CA rotation codes', codes: unionOf('provisioning/src/ca/ca-rotation-error.ts', 'CaRotationCode'), atLeast: 20 },
  { name: 'RFC 5280 revocation reasons', codes: Object.keys(REVOCATION_REASON_CODES), atLeast: 8 },
  { name: 'per-client limits', codes: Object.keys(LIMIT_FLAGS), atLeast: 4 },
  { name: 'TLS handshake reasons', codes: captures(/(?:return|\?\?|:) '([a-z_]+)'/g, code(source('broker/src/trust/tls-failure.ts'))), atLeast: 7 },
  { name: 'issuer validity faults', codes: unionOf('broker/src/trust/trust-anchors.ts', 'AnchorFault'), atLeast: 2 },
  { name: 'certificate profile reasons', codes: unionOf('common/src/peer-identity.ts', 'PeerRejection'), atLeast: 4 },
  { name: 'PROXY refusals', codes: unionOf('broker/src/ingress/proxy-listener.ts', 'ProxyRefusal'), atLeast: 5 },
  { name: 'WebSocket refusals', codes: unionOf('broker/src/ingress/websocket-listener.ts', 'WebSocketRefusal'), atLeast: 4 },
  { name: 'forwarded-certificate refusals', codes: unionOf('broker/src/ingress/forwarded-cert-admission.ts', 'ForwardedRefusal'), atLeast: 2 },
  { name: 'forwarded header problems', codes: unionOf('broker/src/ingress/forwarded-cert-header.ts', 'ForwardedHeaderProblem'), atLeast: 5 },
  { name: 'forwarded chain rejections', codes: unionOf('broker/src/ingress/trust-bundle-verifier.ts', 'ChainRejection'), atLeast: 3 },
  { name: 'frame violations', codes: unionOf('broker/src/server/connection-guard.ts', 'FrameViolation'), atLeast: 2 },
  { name: 'CONNECT refusals', codes: literals(code(source('broker/src/hooks/connect-steps.ts'))), atLeast: 7 },
  { name: 'health-port refusals', codes: literals(/onRefused\?\(reason: ([^)]*)\)/.exec(source('broker/src/server/health-server.ts'))?.[1] ?? ''), atLeast: 3 },
  { name: 'label values given to counters', codes: captures(/\.inc\(\{([^}]*)\}/g, ALL).flatMap(literals), atLeast: 20 },
  { name: 'issuance shed reasons', codes: captures(/shedding\(ctx, '([a-z_]+)'/g, ALL), atLeast: 1 },
  { name: 'provisioning refusal log reasons', codes: captures(/\.note\('([a-z_]+)'/g, ALL), atLeast: 4 },
  { name: 'broker refusal log stages and reasons', codes: captures(/refused\('([a-z]+)'/g, ALL).concat(captures(/refused\('[a-z]+', '([a-z_]+)'/g, ALL)), atLeast: 5 },
  { name: 'admin refusal log reasons', codes: /note\(`admin_\$\{res\.statusCode\}`/.test(ALL) ? ['admin_401', 'admin_403'] : [], atLeast: 2 },
];

const TROUBLESHOOTING = readFileSync(join(ROOT, 'docs/troubleshooting.md'), 'utf8');
const METRICS_DOC = readFileSync(join(ROOT, 'docs/reference/metrics.md'), 'utf8');

/** The contents of every `code span` of a Markdown text. */
function codeSpans(markdown: string): Set<string> {
  return new Set([...markdown.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!));
}

const DOCUMENTED = codeSpans(TROUBLESHOOTING);

/** The service metrics (tlsfleet_*), with their type and label names, from the registries the services export. */
async function sourceMetrics(): Promise<Map<string, { type: string; labels: string[] }>> {
  const broker = new BrokerMetrics();
  const provisioning = new ProvisioningMetrics();
  // Registered only with --cluster.
  broker.registry.registerMetric(broker.clusterUp);
  const out = new Map<string, { type: string; labels: string[] }>();
  for (const registry of [broker.registry, provisioning.registry]) {
    for (const metric of registry.getMetricsAsArray()) {
      const m = metric as unknown as { name: string; labelNames?: readonly string[]; get(): Promise<{ type: string }> };
      if (!m.name.startsWith('tlsfleet_')) continue;
      out.set(m.name, { type: (await m.get()).type, labels: [...(m.labelNames ?? [])] });
    }
  }
  return out;
}

describe('docs/troubleshooting.md', () => {
  it.each(GROUPS.map((g) => [g.name, g] as const))('the scan for %s still finds its codes', (_name, group) => {
    expect(new Set(group.codes).size).toBeGreaterThanOrEqual(group.atLeast);
  });

  it.each(GROUPS.map((g) => [g.name, g] as const))('documents every one of the %s as `code`', (_name, group) => {
    const missing = [...new Set(group.codes)].filter((c) => !DOCUMENTED.has(c));
    expect(missing, `add these to docs/troubleshooting.md, each with its cause and fix`).toEqual([]);
  });

  it('has a row for each exit status of the CLI and of the device agent', () => {
    for (const status of [0, 1, 2, EXIT_REENROLL, EXIT_CONFIG]) {
      expect(TROUBLESHOOTING, `exit status ${status}`).toMatch(new RegExp(`^\\| \`${status}\` \\|`, 'm'));
    }
    expect(EXIT_REENROLL).toBe(3);
    expect(EXIT_CONFIG).toBe(78);
  });

  it('names every labelled service metric', async () => {
    const metrics = await sourceMetrics();
    const labelled = [...metrics].filter(([, m]) => m.labels.length > 0).map(([name]) => name);
    expect(labelled.length).toBeGreaterThan(20);
    expect(labelled.filter((name) => !TROUBLESHOOTING.includes(`\`${name}`))).toEqual([]);
  });
});

describe('docs/reference/metrics.md', () => {
  /** `| \`name\` | type | labels | meaning |` rows. */
  const rows = new Map(
    [...METRICS_DOC.matchAll(/^\| `(tlsfleet_[a-z0-9_]+)` \| ([a-z]+) \| ([^|]*) \|/gm)].map((m) => [m[1]!, { type: m[2]!, labels: m[3]!.split(',').map((l) => l.trim()).filter(Boolean) }]),
  );

  it('has one row per metric, with the type and label names of the source', async () => {
    const metrics = await sourceMetrics();
    expect(metrics.size).toBeGreaterThan(40);
    for (const [name, m] of metrics) {
      expect(rows.get(name), name).toEqual({ type: m.type, labels: m.labels });
    }
    expect([...rows.keys()].filter((name) => !metrics.has(name)), 'rows for metrics that do not exist').toEqual([]);
  });

  it('and the docs name no metric that does not exist', async () => {
    const metrics = await sourceMetrics();
    for (const file of ['docs/reference/metrics.md', 'docs/troubleshooting.md', 'docs/security.md']) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      const named = new Set([...text.matchAll(/\b(tlsfleet_(?:provisioning|broker)_[a-z0-9_]*[a-z0-9])/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, '')));
      expect([...named].filter((name) => !metrics.has(name)), file).toEqual([]);
    }
  });
});

/** GitHub's heading anchors: lower case, punctuation but `-` and `_` dropped, spaces to `-`, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} (.+)$/gm)) {
    const base = m[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

describe('links between the troubleshooting, security and metrics pages', () => {
  it.each(['docs/troubleshooting.md', 'docs/security.md', 'docs/reference/metrics.md'])('every #anchor %s links to is a heading', (file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    const links = [...text.matchAll(/\]\(([^)\s]*#[^)\s]+)\)/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(0);
    const broken = links.filter((link) => {
      const [target, anchor] = link.split('#') as [string, string];
      const path = target === '' ? join(ROOT, file) : resolve(ROOT, file, '..', target);
      return !anchorsOf(readFileSync(path, 'utf8')).has(anchor);
    });
    expect(broken).toEqual([]);
  });
});
