import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Every Markdown file git tracks (or will track: untracked files count too, so a new doc is checked before its commit). */
export function markdownFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.md'], { cwd: REPO_ROOT, encoding: 'utf8' });
  return [...new Set(out.split('\n').filter((f) => f && !f.includes('node_modules/')))];
}

export interface Recipe {
  name: string;
  file: string;
  body: string;
}

const RECIPE = /<!-- recipe:([\w-]+) -->\s*```\w*\n([\s\S]*?)```/g;

let recipes: Recipe[] | undefined;

/** Every fenced block that follows `<!-- recipe:NAME -->` in any Markdown file of the repository, read once per test file. */
export function allRecipes(): Recipe[] {
  recipes ??= markdownFiles().flatMap((file) =>
    [...readFileSync(`${REPO_ROOT}${file}`, 'utf8').matchAll(RECIPE)].map((m) => ({ name: m[1]!, file, body: m[2]! })),
  );
  return recipes;
}

/**
 * The fenced code block that follows `<!-- recipe:NAME -->` in whichever Markdown file
 * holds it, so tests run what readers read. Names are unique across the docs.
 */
export function recipe(name: string): string {
  const found = allRecipes().filter((r) => r.name === name);
  if (found.length === 0) throw new Error(`no Markdown file has a recipe:${name} block`);
  if (found.length > 1) throw new Error(`recipe:${name} appears in ${found.map((r) => r.file).join(' and ')}`);
  return found[0]!.body;
}

