//! The Lua scripts of the Redis engine (`lua/`), each prepended with the
//! shared `prelude.lua`. Redis runs a script atomically: no other command,
//! from any node, runs in the middle of one. `redis::Script` calls them by
//! hash and sends the source again when Redis does not know it (after a
//! Redis restart).

use redis::Script;

const PRELUDE: &str = include_str!("lua/prelude.lua");

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// Every script, loaded once per node.
pub(super) struct Scripts {
    pub(super) say: Script,
    pub(super) join: Script,
    pub(super) leave: Script,
    pub(super) load: Script,
    pub(super) directory: Script,
    pub(super) heartbeat: Script,
    pub(super) depart: Script,
    pub(super) page: Script,
    pub(super) members: Script,
    pub(super) typing: Script,
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        Scripts {
            say: script(include_str!("lua/say.lua")),
            join: script(include_str!("lua/join.lua")),
            leave: script(include_str!("lua/leave.lua")),
            load: script(include_str!("lua/load.lua")),
            directory: script(include_str!("lua/directory.lua")),
            heartbeat: script(include_str!("lua/heartbeat.lua")),
            depart: script(include_str!("lua/depart.lua")),
            page: script(include_str!("lua/page.lua")),
            members: script(include_str!("lua/members.lua")),
            typing: script(include_str!("lua/typing.lua")),
        }
    }
}
