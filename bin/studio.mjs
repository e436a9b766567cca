#!/usr/bin/env node
// The `studio` command. Runs the TypeScript sources through tsx (a runtime dependency), so the CLI and
// `studio serve` work from a fresh install without a build step.
import { register } from 'tsx/esm/api';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

register();
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { main } = await import(join(root, 'electron/host/cli.ts'));
const code = await main(process.argv.slice(2));
// A failed command ends now, whatever it left behind (an engine process, a timer): `studio serve` that
// could not start must not linger without listening.
if (code !== 0) process.exit(code);
process.exitCode = code;
