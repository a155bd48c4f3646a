// dom.js: the small DOM helpers every page shares. User text only ever
// reaches the page through `textContent`, and these are the places that
// put it there. No state.

import { fullTime, shortTime } from './format.js';

/** A new `<tag>` with an optional class and text (set as text, never HTML). */
export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Marks `node` as holding user text of its own direction (`dir="auto"`;
 * the stylesheet isolates it), so right-to-left or bidi-override text in a
 * name or message cannot reorder what is around it. Returns `node`.
 */
export function isolated(node) {
  node.dir = 'auto';
  return node;
}

/** Rewrites a `<time datetime>` in the reader's locale and time zone. */
export function localiseTime(time) {
  const ms = Date.parse(time.dateTime);
  if (Number.isNaN(ms)) return;
  time.textContent = shortTime(ms);
  time.title = fullTime(ms);
}

/** Shows `text` in a form's `.form-error` line ('' clears it). */
export function showFormError(form, text) {
  form.querySelector('.form-error').textContent = text;
}
