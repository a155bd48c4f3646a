// facts.js: what this server enforces, as the server itself says it: the
// `data-*` attributes charla-web renders on <body>
// (templates/server_facts.html). A page's entry module reads them once at
// boot and hands them to what needs them; no limit is repeated here.

/** A positive whole number from `<body data-…>`, or an error naming it. */
function count(data, key) {
  const value = Number(data[key]);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`the page lacks a valid <body> data attribute for ${key}`);
  }
  return value;
}

/**
 * The server's facts from `body`'s data attributes:
 * `maxRoomsPerSession` (rooms one connection may join, the server's
 * configuration), `maxNameChars`, `maxTextChars`, `maxRoomChars` and
 * `apiSenderId` (the contract's, from charla-protocol).
 */
export function readServerFacts(body = document.body) {
  const data = body.dataset;
  if (!data.apiSenderId) throw new Error('the page lacks <body data-api-sender-id>');
  return Object.freeze({
    maxRoomsPerSession: count(data, 'maxRoomsPerSession'),
    maxNameChars: count(data, 'maxNameChars'),
    maxTextChars: count(data, 'maxTextChars'),
    maxRoomChars: count(data, 'maxRoomChars'),
    apiSenderId: data.apiSenderId,
  });
}
