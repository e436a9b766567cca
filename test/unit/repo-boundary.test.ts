/**
 * The tests need nothing beside the repository: a clone anywhere runs them all. This guard reads the
 * test, script and CI sources and fails on any path that leaves the repository (a relative path that
 * climbs out, a folder joined to `..`, the workplace's shared folder). CI also runs the whole suite in
 * a fresh clone with nothing beside it (.ci/run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where the sources that tests run live (fixtures are data, made by committed scripts elsewhere). */
const SCANNED = ['test', 'scripts', 'bench', '.ci'];
/** Source files by extension; the CI scripts have none (.ci/run, .ci/in-fresh-clone). */
const SOURCE = /\.(ts|mts|js|mjs|cjs|py|sh)$|^[\w-]+$/;
const SKIPPED_FOLDERS = new Set(['fixtures', 'node_modules', '__pycache__']);

// Built from pieces so this file doesn't flag itself.
const SHARED = 'shared';
const FORBIDDEN: Array<[RegExp, string]> = [
  [new RegExp(`/work/${SHARED}\\b`), 'an absolute path to the folder beside the repository'],
  [new RegExp(`STUDIO_${SHARED.toUpperCase()}_DIR`), 'an environment variable naming a folder outside the repository'],
  [new RegExp(`['"]\\.\\.['"]\\s*,\\s*['"]${SHARED}['"]`), `a path joined from '..' and '${SHARED}'`],
  [new RegExp(`(?:^|[^\\w./-])\\.\\./${SHARED}\\b`, 'm'), `a relative path ../${SHARED}`],
];

function sources(dir: string, out: string[] = []): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names.sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (!SKIPPED_FOLDERS.has(name)) sources(path, out);
    } else if (SOURCE.test(name)) out.push(path);
  }
  return out;
}

/** What in this file's text reaches outside the repository; `file` is where the text lives. */
export function outsideReferences(text: string, file: string, root = REPO_ROOT): string[] {
  const found: string[] = [];
  for (const [pattern, what] of FORBIDDEN) {
    const m = pattern.exec(text);
    if (m) found.push(`${what}: ${m[0].trim()}`);
  }
  // Relative string literals resolve from the file's folder (imports and URLs alike) and must stay inside.
  for (const m of text.matchAll(/['"`](\.\.?\/[^'"`\s${}]*)['"`]/g)) {
    const target = resolve(dirname(file), m[1]!);
    const rel = relative(root, target);
    if (rel === '..' || rel.startsWith(`..${sep}`)) found.push(`a relative path that leaves the repository: ${m[1]}`);
  }
  return found;
}

test('no test, script or CI source reaches outside the repository', () => {
  // This file's own examples (below) are the guard's test data.
  const files = SCANNED.flatMap((d) => sources(join(REPO_ROOT, d))).filter((f) => f !== fileURLToPath(import.meta.url));
  assert.ok(files.length > 50, `scanned ${files.length} files`);
  const problems = files.flatMap((f) => outsideReferences(readFileSync(f, 'utf8'), f).map((p) => `${relative(REPO_ROOT, f)}: ${p}`));
  assert.deepEqual(problems, []);
});

test('the guard flags the ways a test has read the folder beside the repository', () => {
  const file = join(REPO_ROOT, 'test', 'unit', 'engine', 'tokenizer', 'x.test.ts');
  const flagged = [
    `const besideRepo = resolve(repoRoot, '..', '${SHARED}');`,
    `const dir = process.env['STUDIO_${SHARED.toUpperCase()}_DIR'];`,
    `readFileSync('/work/${SHARED}/data/clip-tokenizer/vocab.json')`,
    `new URL('../../../../../${SHARED}/data/x.json', import.meta.url)`,
    `execSync('cat ../${SHARED}/docs/style.md')`,
  ];
  for (const text of flagged) assert.notDeepEqual(outsideReferences(text, file), [], text);
  const fine = [
    `import { x } from '../../../../electron/${SHARED}/errors.js';`,
    `new URL('../../../fixtures/clip-tokenizer/', import.meta.url)`,
  ];
  for (const text of fine) assert.deepEqual(outsideReferences(text, file), [], text);
});
