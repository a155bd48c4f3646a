// dom.js: the small DOM helpers every page shares. User text only ever
// reaches the page through `textContent`, and these are the places that
// put it there. No state.

import { fullTime, shortTime, textPieces } from './format.js';

/** What every link in a message carries: user content, no referrer, no opener. */
export const LINK_REL = 'noopener noreferrer nofollow ugc';

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

/**
 * Fills `node` with a message's text: http(s) URLs as links that open in a
 * new tab (`rel` LINK_REL), `@name` of the reader (`name`) as a highlighted
 * `<mark>`, everything else as text nodes. No HTML is ever parsed. Returns
 * whether the text mentions the reader.
 */
export function fillMessageText(node, text, name) {
  let mentioned = false;
  const nodes = textPieces(text, name).map((piece) => {
    if (piece.kind === 'link') {
      const link = element('a', 'message-link', piece.text);
      link.href = piece.href;
      link.rel = LINK_REL;
      link.target = '_blank';
      return link;
    }
    if (piece.kind === 'mention') {
      mentioned = true;
      return element('mark', 'mention', piece.text);
    }
    return document.createTextNode(piece.text);
  });
  node.replaceChildren(...nodes);
  return mentioned;
}
