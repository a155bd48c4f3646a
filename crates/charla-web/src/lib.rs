//! Charla's browser face, as a view layer with no HTTP in it: the HTML pages
//! (askama templates from the workspace's top-level `templates/`), the
//! client's JavaScript modules and CSS (the top-level `assets/`, embedded in
//! the binary), and the Content-Security-Policy every page is served with.
//!
//! The server's `pages` module mounts these on routes; this crate only turns
//! data into bytes, so it can be tested without a server.
//!
//! # Layout
//!
//! - [`pages`]: one struct per page ([`LobbyPage`], [`RoomPage`],
//!   [`NotFoundPage`], [`ServerErrorPage`]); rendering one is
//!   [`Template::render`]. [`ServerFacts`] is what the pages with a script
//!   tell it about the server (`data-*` attributes on `<body>`).
//! - [`assets`]: [`asset`] looks up an embedded file: its bytes, its content
//!   type and a validator for conditional requests.
//! - [`clock`]: message times as UTC text, for pages read without JavaScript
//!   (the client rewrites them in the reader's locale and time zone).
//!
//! # Invariants
//!
//! - User text reaches HTML only through askama's escaping (on by default and
//!   never switched off with `|safe` in these templates).
//! - No page holds an inline script, inline event handler or `style`
//!   attribute: everything a page runs comes from `/assets/`, so
//!   [`CONTENT_SECURITY_POLICY`] can forbid anything else.
//! - Nothing is read from the working directory at run time: templates are
//!   compiled in, assets embedded (in debug builds too).

pub mod assets;
pub mod clock;
pub mod pages;

pub use askama::{Error as RenderError, Template};
pub use assets::{Asset, asset};
pub use pages::{LobbyPage, NotFoundPage, RoomPage, ServerErrorPage, ServerFacts};

/// The `Content-Security-Policy` of every HTML page.
///
/// Everything defaults to nothing (`default-src 'none'`); scripts, styles,
/// images and the icon come from this origin only; `connect-src 'self'`
/// covers `fetch` of the history API and the `ws:`/`wss:` connection to the
/// same host. No `'unsafe-inline'` anywhere: an injected `<script>` or
/// `onerror=` would not run even if escaping ever failed. Framing is refused
/// (clickjacking) and forms may only post back here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; manifest-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";
