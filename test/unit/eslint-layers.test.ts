/**
 * The import-layer table in eslint.config.js, proven on snippets: each rule that keeps a layer in its place
 * fails a bad import and passes a good one. Linted with ESLint's Node API and the project's own config,
 * as `npm run lint` runs it.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ESLint } from 'eslint';

const ROOT = join(import.meta.dirname, '..', '..');
/** electron/ as a file in renderer/src/<layer>/ imports it (built, so repo-boundary.test.ts reads no path leaving this test's folder). */
const ELECTRON = `${'../'.repeat(3)}electron`;

let eslint: ESLint;
before(() => {
  eslint = new ESLint({ cwd: ROOT });
});

/** The messages of the import rule for `code` as if it were the file at `path` (relative to the repository). */
async function importProblems(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, path) });
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports' || m.ruleId === 'no-restricted-syntax' || m.fatal).map((m) => m.message);
}

async function fails(path: string, code: string, why: RegExp): Promise<void> {
  const problems = await importProblems(path, code);
  assert.ok(problems.some((p) => why.test(p)), `${path}: expected a problem matching ${why}, got ${JSON.stringify(problems)}`);
}

async function passes(path: string, code: string): Promise<void> {
  assert.deepEqual(await importProblems(path, code), [], `${path} should pass`);
}

describe('lint: the renderer’s imports run one way (app → features, editor → session → document, ipc)', () => {
  it('the session state may not import features or editor (or the composition root)', async () => {
    await fails('renderer/src/session/bad.ts', "import { PromptPanel } from '../features/PromptPanel.js';\nexport { PromptPanel };\n", /renderer\/src\/session may not import renderer\/src\/features/);
    await fails('renderer/src/session/bad.ts', "import type { ToolState } from '../editor/tool-state.js';\nexport type { ToolState };\n", /renderer\/src\/session may not import renderer\/src\/editor/);
    await fails('renderer/src/session/bad.ts', "import { App } from '../app/App.js';\nexport { App };\n", /renderer\/src\/session may not import renderer\/src\/app/);
  });

  it('the session may import the document model and the studio client', async () => {
    await passes('renderer/src/session/good.ts', "import { EditorDocument } from '../document/document.js';\nimport { StudioClient } from '../ipc/studio-client.js';\nexport { EditorDocument, StudioClient };\n");
  });

  it('panels may not reach up into the composition root, nor past the session to the client', async () => {
    await fails('renderer/src/features/Bad.tsx', "import { App } from '../app/App.js';\nexport { App };\n", /features may not import renderer\/src\/app/);
    await fails('renderer/src/editor/Bad.tsx', "import { createStudioClient } from '../ipc/studio-client.js';\nexport { createStudioClient };\n", /editor may not import renderer\/src\/ipc/);
    await fails('renderer/src/document/bad.ts', "import { useSession } from '../session/hooks.js';\nexport { useSession };\n", /document may not import renderer\/src\/session/);
    await passes('renderer/src/features/Good.tsx', "import { useSession } from '../session/hooks.js';\nexport { useSession };\n");
  });
});

describe('lint: the renderer reaches the host only through the studio client', () => {
  for (const layer of ['model-library', 'preload', 'engine', 'history', 'host', 'main']) {
    it(`no import of electron/${layer}, not even a type`, async () => {
      await fails('renderer/src/features/Bad.tsx', `import type { X } from '${ELECTRON}/${layer}/index.js';\nexport type { X };\n`, /only through src\/ipc\/studio-client/);
    });
  }

  it('from electron/shared only types, except the generation limits’ values', async () => {
    await fails('renderer/src/session/bad.ts', `import { parseRequest } from '${ELECTRON}/shared/contract-schemas.js';\nexport { parseRequest };\n`, /only `import type` from electron\/shared/);
    await passes('renderer/src/session/good.ts', `import type { Requests } from '${ELECTRON}/shared/contract.js';\nimport { MAX_STEPS } from '${ELECTRON}/shared/generation-limits.js';\nexport type { Requests };\nexport { MAX_STEPS };\n`);
    await fails('electron/shared/generation-limits.ts', "import { SAMPLERS } from './generation.js';\nexport const N = SAMPLERS.length;\n", /imports nothing/);
  });

  it('no Node and no Electron, in any renderer file', async () => {
    await fails('renderer/src/session/bad.ts', "import { readFile } from 'node:fs/promises';\nexport { readFile };\n", /only through src\/ipc\/studio-client/);
    await fails('renderer/src/main.tsx', "import { ipcRenderer } from 'electron';\nexport { ipcRenderer };\n", /never imports electron/);
  });
});

describe('lint: Node builtins only by their node: name', () => {
  for (const path of ['electron/engine/bad.ts', 'electron/host/bad.ts', 'test/unit/bad.test.ts', 'scripts/bad.mjs', 'bench/bad.bench.ts']) {
    it(`bare 'fs' fails in ${path.split('/').slice(0, -1).join('/')}/`, async () => {
      await fails(path, "import { readFileSync } from 'fs';\nexport { readFileSync };\n", /Import Node builtins as 'node:fs'/);
    });
  }

  it("'path', 'fs/promises' and 'child_process' too; 'node:fs' passes", async () => {
    await fails('electron/history/bad.ts', "import { join } from 'path';\nexport { join };\n", /'node:path'/);
    await fails('electron/history/bad.ts', "import { readFile } from 'fs/promises';\nexport { readFile };\n", /'node:fs\/promises'/);
    await fails('electron/host/bad.ts', "export { spawn } from 'child_process';\n", /'node:child_process'/);
    await passes('electron/history/good.ts', "import { readFileSync } from 'node:fs';\nexport { readFileSync };\n");
  });

  it('electron/shared imports no Node at all', async () => {
    await fails('electron/shared/bad.ts', "import { join } from 'node:path';\nexport { join };\n", /no node imports/);
  });
});
