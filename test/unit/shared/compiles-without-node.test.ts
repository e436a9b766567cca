/**
 * electron/shared runs in the host, the engine and the renderer alike, so it must compile without Node's
 * types (or the DOM's): electron/shared/tsconfig.json says `types: []`, and `npm run typecheck` runs it.
 * Here the same config is compiled through the TypeScript API, and a file that reaches for Node fails it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import ts from 'typescript';

const CONFIG = join(import.meta.dirname, '..', '..', '..', 'electron', 'shared', 'tsconfig.json');

function diagnostics(extra?: { name: string; text: string }): string[] {
  const parsed = ts.getParsedCommandLineOfConfigFile(CONFIG, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(String(d.messageText)) })!;
  assert.deepEqual(parsed.options.types, [], 'electron/shared/tsconfig.json has no ambient types');
  const host = ts.createCompilerHost(parsed.options);
  const files = [...parsed.fileNames];
  if (extra) {
    const read = host.readFile.bind(host);
    const exists = host.fileExists.bind(host);
    const get = host.getSourceFile.bind(host);
    host.readFile = (f) => (f === extra.name ? extra.text : read(f));
    host.fileExists = (f) => f === extra.name || exists(f);
    host.getSourceFile = (f, v, ...rest) => (f === extra.name ? ts.createSourceFile(f, extra.text, v) : get(f, v, ...rest));
    files.push(extra.name);
  }
  const program = ts.createProgram(files, parsed.options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

describe('electron/shared compiles without Node types', () => {
  it('every file of electron/shared compiles with types: [] and no DOM', () => {
    assert.deepEqual(diagnostics(), []);
  });

  it('a shared file that names Node (Buffer, process, atob) does not', () => {
    const name = join(CONFIG, '..', 'reaches-for-node.ts');
    const problems = diagnostics({ name, text: "export const size = Buffer.byteLength('x') + process.pid + atob('eA==').length;\n" });
    assert.ok(problems.some((p) => /Cannot find name 'Buffer'/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /Cannot find name 'process'/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /Cannot find name 'atob'/.test(p)), problems.join('\n'));
  });
});
