import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  APP_ORIGIN,
  CONTENT_SECURITY_POLICY,
  isAllowedNavigation,
  isTrustedSender,
  opensExternally,
  rendererOrigins,
} from '../../../electron/main/security-policy.js';

const origins = rendererOrigins(null);

test('the CSP allows only our own scripts and forbids plugins, framing and base/form hijacks', () => {
  const directives = new Map(CONTENT_SECURITY_POLICY.split('; ').map((d) => [d.split(' ')[0], d.split(' ').slice(1).join(' ')]));
  assert.equal(directives.get('script-src'), "'self'", 'no inline scripts, no eval');
  assert.equal(directives.get('default-src'), "'self'");
  assert.equal(directives.get('object-src'), "'none'");
  assert.equal(directives.get('frame-ancestors'), "'none'");
  assert.equal(directives.get('base-uri'), "'none'");
  assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe-eval|\*/);
});

test('navigation stays on the app origin (and the dev server, in development)', () => {
  assert.equal(isAllowedNavigation(`${APP_ORIGIN}/index.html`, origins), true);
  assert.equal(isAllowedNavigation(`${APP_ORIGIN}/history?x=1`, origins), true);
  for (const url of ['https://evil.example/', 'app://other/index.html', 'file:///etc/passwd', 'javascript:alert(1)', 'data:text/html,hi', 'not a url', 'http://localhost:5173/']) {
    assert.equal(isAllowedNavigation(url, origins), false, url);
  }
  const dev = rendererOrigins('http://localhost:5173/');
  assert.equal(isAllowedNavigation('http://localhost:5173/src/main.tsx', dev), true);
  assert.throws(() => rendererOrigins('http://192.168.1.5:5173/'), /loopback/);
  assert.throws(() => rendererOrigins('https://example.com/'), /loopback/);
});

test('only plain https links open in the browser', () => {
  assert.equal(opensExternally('https://github.com/huggingface/diffusers'), true);
  for (const url of ['http://example.com', 'file:///etc/passwd', 'javascript:alert(1)', 'smb://host/share', 'https://']) {
    assert.equal(opensExternally(url), false, url);
  }
});

test('IPC is answered only for the main frame of our own windows, showing our origin', () => {
  const mainFrame = { url: `${APP_ORIGIN}/index.html`, parent: null };
  const window = { mainFrame } as unknown as Parameters<typeof isTrustedSender>[1] extends Iterable<infer W> ? W : never;
  const windows = [window];
  assert.equal(isTrustedSender(mainFrame, windows, origins), true);
  assert.equal(isTrustedSender(null, windows, origins), false, 'no frame (it navigated away or was destroyed)');
  assert.equal(isTrustedSender({ url: `${APP_ORIGIN}/index.html`, parent: mainFrame }, windows, origins), false, 'a subframe');
  assert.equal(isTrustedSender({ url: `${APP_ORIGIN}/index.html`, parent: null }, windows, origins), false, 'a frame of another window');
  const navigatedAway = { url: 'https://evil.example/', parent: null };
  assert.equal(isTrustedSender(navigatedAway, [{ mainFrame: navigatedAway } as typeof window], origins), false, 'our window showing another origin');
});
