import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { allRecipes, markdownFiles, REPO_ROOT } from './harness/readme.js';

const ROOT = resolve(REPO_ROOT);
const MARKDOWN = markdownFiles();

/** `[text](target)` link targets in a Markdown file, outside fenced code blocks. */
function links(text: string): string[] {
  const prose = text.replace(/^```[\s\S]*?^```/gm, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

/** The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces to '-', repeats numbered. */
function anchorsOf(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/^```[\s\S]*?^```/gm, '');
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const m of text.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const plain = m[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/<[^>]+>/g, '');
    const slug = plain.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  for (const m of text.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) anchors.add(m[1]!);
  return anchors;
}

/** Every test source, to find which recipes some test runs. */
function testSources(dir = join(ROOT, 'test')): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' ? [] : testSources(path);
    return name.endsWith('.ts') ? [readFileSync(path, 'utf8')] : [];
  });
}

// The docs travel with a clone: nothing may point outside it (../shared is not in a clone),
// every file a link names must exist, and every #anchor must name a heading there.
describe('the repository docs', () => {
  it('finds the Markdown files it checks', () => {
    for (const doc of ['README.md', 'docs/security.md', 'docs/troubleshooting.md', 'docs/reference/README.md', 'device-sdk/README.md']) {
      expect(MARKDOWN).toContain(doc);
    }
  });

  it.each(MARKDOWN)('%s links only to files inside the repository that exist, and to headings they have', (file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    expect(text).not.toMatch(/\.\.\/shared\b|DESIGN\.md/);
    for (const link of links(text)) {
      const [target, anchor] = link.split('#') as [string, string | undefined];
      const path = target === '' ? join(ROOT, file) : resolve(ROOT, dirname(file), decodeURI(target));
      expect(path.startsWith(ROOT + '/') || path === ROOT, `${file}: ${link} leaves the repository`).toBe(true);
      expect(existsSync(path), `${file}: ${link} names a file that does not exist`).toBe(true);
      if (anchor !== undefined && anchor !== '' && path.endsWith('.md')) {
        expect([...anchorsOf(path)], `${file}: ${link} names a heading ${target || file} does not have`).toContain(decodeURIComponent(anchor));
      }
    }
  });

  it('has no README longer than a short guide', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').length).toBeLessThanOrEqual(250);
  });
});

// A block marked `<!-- recipe:NAME -->` promises the reader it works: some test must run it.
describe('the recipes in the docs', () => {
  const recipes = allRecipes();
  // Tests that read recipes (they import the recipe harness) and the names they quote.
  const tests = testSources()
    .filter((source) => source.includes('/harness/readme.js'))
    .join('\n');

  it('finds the recipes, each name once', () => {
    expect(recipes.length).toBeGreaterThanOrEqual(8);
    const names = recipes.map((r) => r.name);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  it.each(recipes.map((r) => [r.name, r.file] as const))('recipe:%s in %s is run by a test', (name) => {
    expect(tests).toContain(`'${name}'`);
  });
});
