#!/usr/bin/env node
// Runs every test file (or those under the given folders) with node's test runner and tsx,
// prints the spec report and ends with one line "N passed, N failed".
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';

const roots = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const passthrough = process.argv.slice(2).filter((a) => a.startsWith('--'));
const searchRoots = roots.length > 0 ? roots : ['test'];

function collect(dir, out) {
  const st = statSync(dir);
  if (st.isFile()) { out.push(dir); return out; }
  for (const name of readdirSync(dir).sort()) {
    if (name === 'fixtures' || name === 'node_modules') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (/\.test\.(ts|mts|js|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

const files = searchRoots.flatMap((r) => collect(r, []));
if (files.length === 0) {
  console.error('no test files found under', searchRoots.join(', '));
  process.exit(1);
}
const summary = resolve('test/support/summary-reporter.mjs');
const args = [
  '--import', 'tsx',
  '--test',
  '--test-concurrency=1',
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  `--test-reporter=${summary}`, '--test-reporter-destination=stdout',
  ...passthrough,
  ...files,
];
const child = spawn(process.execPath, args, { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(signal ? 1 : code ?? 1));
