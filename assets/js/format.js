// format.js: pure helpers shared by the pages: the contract's name rules
// (checked here too, so a bad value is explained before it reaches the
// server), error codes in plain words, name colours and tags, message
// times in the reader's locale and time zone, and the split of a message's
// text into plain text, links and mentions (dom.js turns the pieces into
// nodes, text always as text). No DOM, no state: the limits in the
// rules are the server's, read from the page (facts.js) and handed to
// `Rules` once at boot.

/** Distinct name colours; `NAME_HUES` in charla-web's pages.rs must match. */
export const NAME_HUES = 8;
/** Hex digits of a member id in its tag; `TAG_CHARS` in pages.rs must match. */
export const TAG_CHARS = 4;
/** Consecutive messages by one sender closer than this share one header. */
export const GROUP_WINDOW_MS = 5 * 60 * 1000;

// Control (Cc) and format (Cf: bidi controls, zero-width characters)
// characters and line or paragraph separators: forbidden anywhere in a
// name, but for the zero-width joiner inside an emoji sequence (👩‍🚀).
const FORBIDDEN_IN_NAME = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const EMOJI_JOINER = /(?<=[^\p{ASCII}](?<=\p{Emoji})\uFE0F?)\u200D(?=(?!\p{ASCII})\p{Emoji})/gu;

/** Length of a message as the server counts it (scalar values, trimmed). */
export function textLength(text) {
  return [...String(text).trim()].length;
}

/**
 * The contract's rules for names and text, with the limits this server
 * enforces (`maxNameChars`, `maxTextChars`, `maxRoomChars` from facts.js),
 * and the error codes in plain words that state them.
 */
export class Rules {
  constructor({ maxNameChars, maxTextChars, maxRoomChars }) {
    /** Longest display name, in Unicode scalar values. */
    this.maxNameChars = maxNameChars;
    /** Longest message, in Unicode scalar values after trimming. */
    this.maxTextChars = maxTextChars;
    this.roomPattern = new RegExp(`^[a-z0-9][a-z0-9_-]{0,${maxRoomChars - 1}}$`);
    this.words = {
      rate_limited: 'You are going faster than this server allows. Charla will try again in a moment.',
      invalid_text: `Messages must be between 1 and ${maxTextChars} characters.`,
      invalid_name: `Names must be 1 to ${maxNameChars} characters, without control or invisible characters.`,
      invalid_room: `Room names are 1 to ${maxRoomChars} letters, digits, “-” or “_”, starting with a letter or a digit.`,
      not_joined: 'You are not in this room right now.',
      too_many_rooms: 'You have as many rooms open as the server allows. Close one to open another.',
      bad_request: 'The server did not understand that request.',
      unsupported: 'The server does not support that.',
      unavailable: 'The server cannot store or load messages right now. Charla will try again in a moment.',
      unknown_message: 'That message no longer exists here (it was deleted or is too old).',
      not_author: 'Only the person who wrote a message can change it.',
      identity_locked: 'The server did not take this browser\'s identity on this connection.',
    };
  }

  /** The canonical (lowercased) room name, or null when it is not valid. */
  roomName(raw) {
    const name = String(raw).trim().toLowerCase();
    return this.roomPattern.test(name) ? name : null;
  }

  /** The trimmed display name, or null when the server would refuse it. */
  displayName(raw) {
    const name = String(raw).trim();
    const length = [...name].length; // scalar values, like the server
    return length >= 1 && length <= this.maxNameChars && !FORBIDDEN_IN_NAME.test(name.replace(EMOJI_JOINER, '')) ? name : null;
  }

  /**
   * A server error code in plain words (falls back to the server's text).
   * A ban says until when, in the reader's time (`until`, Unix ms).
   */
  errorWords(code, serverMessage, until) {
    if (code === 'banned' && Number.isFinite(until)) {
      return `A moderator has banned you here until ${fullTime(until)}.`;
    }
    return this.words[code] ?? serverMessage ?? 'Something went wrong.';
  }
}

/**
 * The tag shown next to a member's name: `#` and the start of the member
 * id, so two members with the same name are told apart. An identity's id
 * is the same on every connection and after every restart (protocol rule
 * 49). Must match `tag_of` in crates/charla-web/src/pages.rs; the HTTP
 * API's sender (`apiSenderId`) has none: it shows a badge instead.
 */
export function tagOf(id, apiSenderId) {
  return id === apiSenderId ? '' : `#${id.slice(0, TAG_CHARS)}`;
}

/**
 * The colour class index of a member, a stable hash of their member id.
 * Must stay identical to `hue_of` in crates/charla-web/src/pages.rs:
 * h = h * 31 + code unit, wrapping at 32 bits.
 */
export function hueOf(id) {
  let hash = 0;
  for (let i = 0; i < id.length; i += 1) {
    hash = (Math.imul(hash, 31) + id.charCodeAt(i)) >>> 0;
  }
  return hash % NAME_HUES;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

/** Short time for a message: the time today, or date and time otherwise. */
export function shortTime(ms, now = new Date()) {
  const date = new Date(ms);
  return date.toDateString() === now.toDateString()
    ? timeFormat.format(date)
    : dayTimeFormat.format(date);
}

/** Full date and time, for the tooltip. */
export function fullTime(ms) {
  return fullFormat.format(new Date(ms));
}

/** "ana is typing…" for one to several names. */
export function typingSentence(names) {
  // Each name is isolated (FSI … PDI) so right-to-left text in it cannot
  // reorder the sentence around it.
  names = names.map((name) => `\u2068${name}\u2069`);
  if (names.length === 0) return '';
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

// An http(s) URL: the scheme, then anything up to white space or a
// character that cannot be in a URL as people write them. Only these two
// schemes are ever links (`javascript:` and the like stay text).
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`{}|\\^]+/giu;
// Punctuation that ends a sentence rather than the URL before it.
const TRAILING = /[.,:;!?'"\]]+$/u;

/** `candidate` without trailing punctuation, and a `)` it does not open. */
function trimUrl(candidate) {
  let url = candidate.replace(TRAILING, '');
  while (url.endsWith(')') && (url.match(/\(/g) ?? []).length < (url.match(/\)/g) ?? []).length) {
    url = url.slice(0, -1).replace(TRAILING, '');
  }
  return url;
}

/** The href of a URL found in text, or null when it is no http(s) URL. */
export function safeHref(raw) {
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * Whether `text` mentions `name` (`@name`, any case, not followed by a
 * letter or digit: `@ana` mentions ana, `@anabel` does not).
 */
function mentionsAt(text, index, name) {
  if (text[index] !== '@') return false;
  const candidate = text.slice(index + 1, index + 1 + name.length);
  if (candidate.toLocaleLowerCase() !== name.toLocaleLowerCase()) return false;
  const next = text.slice(index + 1 + name.length);
  return !/^[\p{L}\p{N}_]/u.test(next);
}

/**
 * The text of a message in pieces, in order: `{kind: 'text', text}`,
 * `{kind: 'link', text, href}` for http(s) URLs, and `{kind: 'mention',
 * text}` for `@name` where `name` is the reader's name (none when `name` is
 * empty). Joined, the pieces' texts are the text unchanged.
 */
export function textPieces(text, name) {
  const pieces = [];
  const pushText = (chunk) => {
    if (!chunk) return;
    if (!name) {
      pieces.push({ kind: 'text', text: chunk });
      return;
    }
    let start = 0;
    for (let i = chunk.indexOf('@'); i >= 0; i = chunk.indexOf('@', i + 1)) {
      if (!mentionsAt(chunk, i, name)) continue;
      if (i > start) pieces.push({ kind: 'text', text: chunk.slice(start, i) });
      const end = i + 1 + name.length;
      pieces.push({ kind: 'mention', text: chunk.slice(i, end) });
      start = end;
      i = end - 1;
    }
    if (start < chunk.length) pieces.push({ kind: 'text', text: chunk.slice(start) });
  };
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const url = trimUrl(match[0]);
    const href = safeHref(url);
    if (!href) continue;
    pushText(text.slice(last, match.index));
    pieces.push({ kind: 'link', text: url, href });
    last = match.index + url.length;
  }
  pushText(text.slice(last));
  return pieces;
}
