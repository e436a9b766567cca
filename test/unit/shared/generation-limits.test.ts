/**
 * A generation request's limits and defaults have one definition (electron/shared/generation-limits.ts).
 * The source scan fails when a copy reappears: one of its names declared again anywhere, or one of its
 * distinctive numbers bound to a name in a file that checks requests. The boundary cases show the
 * contract's schema and the engine's resolveParams read the same numbers (the renderer's Generate check
 * is tested the same way in test/unit/renderer/session/session.test.ts).
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { openModelFolder, type LoadedModel } from '../../../electron/engine/model/model-folder.js';
import { resolveParams } from '../../../electron/engine/pipelines/resolve.js';
import type { GenerateRequest } from '../../../electron/engine/pipelines/types.js';
import { parseRequest } from '../../../electron/shared/contract-schemas.js';
import * as limits from '../../../electron/shared/generation-limits.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const LIMITS_FILE = 'electron/shared/generation-limits.ts';
const SOURCE_ROOTS = ['electron', 'renderer/src', 'bin', 'scripts', 'bench'];
/** Files that check or default a generation request (contract-schemas.ts holds the contract's other limits, so only the name scan covers it). */
const CHECKERS = ['electron/engine/pipelines/resolve.ts', 'electron/engine/model/model-folder.ts', 'renderer/src/session', 'renderer/src/features/PromptPanel.tsx'];

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) sourceFiles(path, out);
    else if (/\.(ts|tsx|mts|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Every variable declaration of a file, with the numeric literal it is bound to (if any). */
function declarations(path: string): Array<{ name: string; literal: number | null; line: number }> {
  const text = readFileSync(join(ROOT, path), 'utf8');
  const file = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, path.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const out: Array<{ name: string; literal: number | null; line: number }> = [];
  const visit = (node: ts.Node): void => {
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name)) {
      const init = node.initializer;
      const literal = init && ts.isNumericLiteral(init) ? Number(init.text) : null;
      out.push({ name: node.name.text, literal, line: file.getLineAndCharacterOfPosition(node.getStart()).line + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return out;
}

const NAMES = new Set(Object.keys(limits));
/** Numbers that can only mean a limit or default here (small counts like 1, 4 or 8 mean many things). */
const DISTINCTIVE = new Set(Object.values(limits).filter((v): v is number => typeof v === 'number' && (!Number.isInteger(v) || v >= 10)));

describe('generation limits: one definition', () => {
  it('generation-limits.ts exports the names the three consumers use', () => {
    for (const name of ['MAX_STEPS', 'MAX_CFG', 'MAX_SIDE', 'MAX_MASK_BLUR', 'MAX_MASK_PADDING', 'MAX_CONTROL_SCALE', 'MAX_SEED', 'DEFAULT_IMG2IMG_STRENGTH', 'DEFAULT_MASK_BLUR', 'DEFAULT_MASK_PADDING']) {
      assert.ok(NAMES.has(name), name);
    }
  });

  it('no source file declares one of its names again', () => {
    const copies: string[] = [];
    for (const path of SOURCE_ROOTS.flatMap((r) => sourceFiles(r))) {
      if (path === LIMITS_FILE) continue;
      const text = readFileSync(join(ROOT, path), 'utf8');
      if (![...NAMES].some((n) => text.includes(n))) continue;
      for (const d of declarations(path)) if (NAMES.has(d.name)) copies.push(`${path}:${d.line} declares ${d.name}`);
    }
    assert.deepEqual(copies, [], 'import it from electron/shared/generation-limits.ts instead');
  });

  it('no file that checks requests binds one of its numbers to a name of its own', () => {
    const copies: string[] = [];
    for (const path of CHECKERS.flatMap((c) => (c.endsWith('.ts') || c.endsWith('.tsx') ? [c] : sourceFiles(c)))) {
      for (const d of declarations(path)) {
        if (d.literal !== null && DISTINCTIVE.has(d.literal)) copies.push(`${path}:${d.line} ${d.name} = ${d.literal}`);
      }
    }
    assert.deepEqual(copies, [], 'a limit or default bound here again: import it from electron/shared/generation-limits.ts');
  });

  it('the scan sees a copy when there is one', () => {
    // The scan itself, on a snippet: a renamed copy of MAX_STEPS and one under its own name.
    const file = ts.createSourceFile('x.ts', 'const STEP_CAP = 1000; export const MAX_STEPS = 5;', ts.ScriptTarget.Latest, true);
    const found: string[] = [];
    file.forEachChild(function visit(node): void {
      if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer && ts.isNumericLiteral(node.initializer)) {
        if (NAMES.has(node.name.text) || DISTINCTIVE.has(Number(node.initializer.text))) found.push(node.name.text);
      }
      node.forEachChild(visit);
    });
    assert.deepEqual(found, ['STEP_CAP', 'MAX_STEPS']);
  });
});

describe('generation limits: the schema and the engine agree at every bound', () => {
  let model: LoadedModel;
  before(async () => {
    model = await openModelFolder(join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd1-inpaint'), { providers: ['cpu'], threads: 1 });
  });

  const PNG = new Uint8Array([1]);
  const base = (): GenerateRequest => ({ mode: 'inpaint', prompt: '', seed: 1, sampler: 'euler', initImage: PNG, mask: PNG, width: model.info.defaults.width, height: model.info.defaults.height });
  const wire = (fields: Record<string, unknown>) => ({ mode: 'inpaint', prompt: '', initImageHash: 'a'.repeat(64), mask: 'AAAA', ...fields });

  const cases: Array<{ field: string; at: Record<string, unknown>; past: Record<string, unknown> }> = [
    { field: 'steps', at: { steps: limits.MAX_STEPS }, past: { steps: limits.MAX_STEPS + 1 } },
    { field: 'steps', at: { steps: limits.MIN_STEPS }, past: { steps: limits.MIN_STEPS - 1 } },
    { field: 'cfg', at: { cfg: limits.MAX_CFG }, past: { cfg: limits.MAX_CFG + 0.5 } },
    { field: 'maskBlur', at: { maskBlur: limits.MAX_MASK_BLUR }, past: { maskBlur: limits.MAX_MASK_BLUR + 1 } },
    { field: 'maskPadding', at: { inpaintArea: 'masked', maskPadding: limits.MAX_MASK_PADDING }, past: { inpaintArea: 'masked', maskPadding: limits.MAX_MASK_PADDING + 1 } },
    { field: 'strength', at: { strength: limits.MAX_STRENGTH }, past: { strength: limits.MAX_STRENGTH + 0.01 } },
    { field: 'seed', at: { seed: limits.MAX_SEED }, past: { seed: limits.MAX_SEED + 2 } },
    { field: 'prompt', at: { prompt: 'a'.repeat(limits.MAX_PROMPT_CHARS) }, past: { prompt: 'a'.repeat(limits.MAX_PROMPT_CHARS + 1) } },
  ];
  for (const c of cases) {
    it(`${c.field}: ${JSON.stringify(c.at).slice(0, 40)} passes both, one past fails both`, () => {
      assert.doesNotThrow(() => parseRequest('generate', wire(c.at)));
      assert.throws(() => parseRequest('generate', wire(c.past)), /generate/);
      assert.doesNotThrow(() => resolveParams(model, { ...base(), ...c.at } as GenerateRequest));
      assert.throws(() => resolveParams(model, { ...base(), ...c.past } as GenerateRequest), { name: 'InvalidRequestError' });
    });
  }

  it('sides: the largest and a non-multiple', () => {
    const side = { width: limits.MAX_SIDE, height: limits.MAX_SIDE };
    assert.doesNotThrow(() => parseRequest('generate', wire(side)));
    assert.throws(() => parseRequest('generate', wire({ width: limits.MAX_SIDE + limits.SIDE_MULTIPLE })));
    assert.throws(() => parseRequest('generate', wire({ width: limits.MIN_SIDE + 1 })));
    assert.throws(() => resolveParams(model, { ...base(), width: limits.MAX_SIDE + limits.SIDE_MULTIPLE }), { name: 'InvalidRequestError' });
  });

  it('defaults: a request without them gets the shared ones', () => {
    const params = resolveParams(model, { ...base(), inpaintArea: 'masked' });
    assert.equal(params.maskBlur, limits.DEFAULT_MASK_BLUR);
    assert.equal(params.maskPadding, limits.DEFAULT_MASK_PADDING);
    assert.equal(resolveParams(model, { ...base(), mode: 'img2img', mask: undefined }).strength, limits.DEFAULT_IMG2IMG_STRENGTH);
    assert.equal(model.info.defaults.steps, limits.DEFAULT_STEPS);
    assert.equal(model.info.defaults.cfg, limits.DEFAULT_CFG);
  });
});


