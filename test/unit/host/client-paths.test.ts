/**
 * Paths taken from clients are checked for the platform the host runs on: a Windows path (`C:\x`,
 * `\\server\share`) is not absolute on Linux or macOS (it would resolve against the working folder), and
 * a POSIX root path is not a full path on Windows (it would resolve against the current drive).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientPathProblem, clientPathsOf } from '../../../electron/host/client-paths.js';
import { parseRequest } from '../../../electron/shared/contract-schemas.js';

test('on Linux and macOS only a path starting with "/" is absolute', () => {
  for (const platform of ['linux', 'darwin'] as const) {
    assert.equal(clientPathProblem('/home/me/out', platform), null);
    assert.match(clientPathProblem('C:\\x', platform)!, /not an absolute path on this computer/);
    assert.match(clientPathProblem('C:/x', platform)!, /absolute/);
    assert.match(clientPathProblem('\\\\server\\share\\x', platform)!, /absolute/);
  }
});

test('on Windows a path needs a drive or a network share', () => {
  assert.equal(clientPathProblem('C:\\Users\\me\\out', 'win32'), null);
  assert.equal(clientPathProblem('d:/out', 'win32'), null);
  assert.equal(clientPathProblem('\\\\nas\\share\\out', 'win32'), null);
  assert.match(clientPathProblem('/home/me/out', 'win32')!, /absolute/);
  assert.match(clientPathProblem('\\out', 'win32')!, /absolute/);
  assert.match(clientPathProblem('C:out', 'win32')!, /absolute/);
  assert.match(clientPathProblem('\\\\nas', 'win32')!, /absolute/);
});

test('every file path of every channel is found, nested or in lists', () => {
  const cases: Array<[string, unknown, string[]]> = [
    ['history.export', { ids: [1], folder: 'C:\\x' }, ['folder=C:\\x']],
    ['history.import', { paths: ['/a.png', 'C:\\b.png'] }, ['paths.0=/a.png', 'paths.1=C:\\b.png']],
    ['settings.set', { outputFolder: '\\\\srv\\share' }, ['outputFolder=\\\\srv\\share']],
    ['settings.set', { outputFolder: null }, []],
    ['models.import', { path: '/m' }, ['path=/m']],
    ['models.convertCommand', { path: '/m.safetensors' }, ['path=/m.safetensors']],
    ['generate', { mode: 'txt2img', prompt: 'x', control: { image: 'AAAA', scale: 1, controlnetPath: 'C:\\cn' } }, ['control.controlnetPath=C:\\cn']],
    ['history.page', {}, []],
  ];
  for (const [channel, payload, expected] of cases) {
    const request = parseRequest(channel as 'history.export', payload);
    assert.deepEqual(clientPathsOf(channel as 'history.export', request).map((p) => `${p.field}=${p.path}`), expected, channel);
  }
});
