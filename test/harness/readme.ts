import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The fenced code block that follows `<!-- recipe:NAME -->` in README.md, so tests run what newcomers read. */
export function readmeRecipe(name: string): string {
  const readme = readFileSync(`${REPO_ROOT}README.md`, 'utf8');
  const m = new RegExp(`<!-- recipe:${name} -->\\s*\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(readme);
  if (!m?.[1]) throw new Error(`README.md has no recipe:${name} block`);
  return m[1];
}
