// http.test.mjs: what the pages promise at the HTTP level, without a
// browser: every HTML answer (the 404 and the form redirect's target
// included) carries the CSP and the other security headers; invalid room
// names are a 404 page, uppercase names redirect to the lowercase path;
// unknown API paths stay JSON; assets have the right types and revalidate
// with their ETag; the room page carries its data in data-* attributes and
// no inline script.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CharlaServer } from './helpers.mjs';

let server;

before(async () => {
  server = await CharlaServer.start();
});

after(async () => {
  await server?.stop();
});

function get(path, headers = {}) {
  return fetch(`${server.url}${path}`, { redirect: 'manual', headers });
}

function assertSecurityHeaders(response, path) {
  const csp = response.headers.get('content-security-policy') ?? '';
  assert.match(csp, /script-src 'self'/, path);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
  assert.match(csp, /default-src 'none'/, path);
  assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
  assert.equal(response.headers.get('referrer-policy'), 'same-origin', path);
  assert.match(response.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/, path);
}

test('pages and error pages carry the CSP and security headers', async () => {
  for (const [path, status] of [
    ['/', 200],
    ['/rooms/general', 200],
    ['/rooms/never-used-before', 200],
    ['/rooms/-nope', 404],
    ['/rooms/has%20space', 404],
    ['/rooms/%3Cscript%3E', 404],
    ['/no/such/page', 404],
  ]) {
    const response = await get(path);
    assert.equal(response.status, status, path);
    assertSecurityHeaders(response, path);
    const body = await response.text();
    assert.doesNotMatch(body, /<script>|<script [^>]*>[^<]/, `${path}: no inline script`);
    assert.doesNotMatch(body, / on[a-z]+=/, `${path}: no inline handler`);
    assert.doesNotMatch(body, / style=/, `${path}: no inline style`);
  }
  const escaped = await (await get('/rooms/%3Cscript%3E')).text();
  assert.match(escaped, /&#60;script&#62;/);
});

test('room names are canonical: uppercase redirects, the lobby form redirects', async () => {
  const upper = await get('/rooms/General');
  assert.equal(upper.status, 308);
  assert.equal(upper.headers.get('location'), '/rooms/general');
  const form = await get('/rooms?name=ana&room=Design');
  assert.equal(form.status, 303);
  assert.equal(form.headers.get('location'), '/rooms/design');
  const bad = await get('/rooms?room=no%20way');
  assert.equal(bad.status, 404);
  assertSecurityHeaders(bad, '/rooms?room=no way');
});

test('the room page hands its data over in data-* attributes', async () => {
  const body = await (await get('/rooms/quiet')).text();
  assert.match(body, /data-room="quiet"/);
  assert.match(body, /data-last-id="0"/);
  assert.match(body, /<script type="module" src="\/assets\/js\/room.js"><\/script>/);
});

test('unknown API paths answer JSON, not HTML', async () => {
  const response = await get('/api/nothing');
  assert.equal(response.status, 404);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal((await response.json()).error, 'not_found');
});

test('assets are typed, nosniff, and revalidate with their ETag', async () => {
  for (const [path, type] of [
    ['/assets/js/room.js', /^text\/javascript/],
    ['/assets/js/lobby.js', /^text\/javascript/],
    ['/assets/charla.css', /^text\/css/],
    ['/assets/icon.svg', /^image\/svg\+xml/],
  ]) {
    const response = await get(path);
    assert.equal(response.status, 200, path);
    assert.match(response.headers.get('content-type') ?? '', type, path);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
    const etag = response.headers.get('etag');
    assert.ok(etag, path);
    const again = await get(path, { 'If-None-Match': etag });
    assert.equal(again.status, 304, path);
  }
  assert.equal((await get('/assets/nope.js')).status, 404);
  assert.equal((await get('/assets/../Cargo.toml')).status, 404);
});
