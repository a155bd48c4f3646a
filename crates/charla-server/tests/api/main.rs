//! Integration tests: each starts the real server on `127.0.0.1:0` and talks
//! to it over real WebSocket and HTTP connections. One test binary, with the
//! shared harness in `helpers.rs`. "Rule N" in these tests, in comments and
//! assertion messages alike, is rule N of docs/protocol.md, the contract.

mod helpers;

mod abuse;
mod config_cli;
mod delivery;
mod http_api;
mod limits;
mod moderation;
mod people;
mod presence;
mod requests;
mod transport;
