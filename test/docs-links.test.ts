import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const MARKDOWN = execFileSync('git', ['ls-files', '*.md'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);

/** Relative link targets of `[text](target)` in a Markdown file, without their #anchor. */
function relativeLinks(text: string): string[] {
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!.split('#')[0]!)
    .filter((t) => t !== '' && !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

// The docs travel with a clone: nothing may point outside it (../shared is not in a clone),
// and every file a link names must exist.
describe('the repository docs', () => {
  it('finds the Markdown files it checks', () => {
    expect(MARKDOWN).toContain('README.md');
    expect(MARKDOWN).toContain('docs/security.md');
  });

  it.each(MARKDOWN)('%s links only to files inside the repository that exist', (file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    expect(text).not.toMatch(/\.\.\/shared\b/);
    for (const target of relativeLinks(text)) {
      const path = resolve(ROOT, dirname(file), decodeURI(target));
      expect(path.startsWith(ROOT + '/') || path === ROOT, `${file}: ${target} leaves the repository`).toBe(true);
      expect(existsSync(path), `${file}: ${target} does not exist`).toBe(true);
    }
  });
});
