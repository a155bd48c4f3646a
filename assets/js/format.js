// format.js: pure helpers shared by the pages: the contract's name rules
// (checked here too, so a bad value is explained before it reaches the
// server), error codes in plain words, name colours and message times in
// the reader's locale and time zone. No DOM, no state: the limits in the
// rules are the server's, read from the page (facts.js) and handed to
// `Rules` once at boot.

/** Distinct name colours; `NAME_HUES` in charla-web's pages.rs must match. */
export const NAME_HUES = 8;
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

  /** A server error code in plain words (falls back to the server's text). */
  errorWords(code, serverMessage) {
    return this.words[code] ?? serverMessage ?? 'Something went wrong.';
  }
}

/**
 * The colour class index of a member, a stable hash of their session id.
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
