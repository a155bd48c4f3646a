//! The Lua scripts of the Redis engine (`lua/`), each prepended with the
//! shared `prelude.lua`. Redis runs a script atomically: no other command,
//! from any node, runs in the middle of one.
//!
//! Scripts are loaded once (`SCRIPT LOAD`) when the node connects and then
//! called by hash (`EVALSHA`). A call Redis answers with `NOSCRIPT` (it
//! restarted and forgot them) loads them again; a call that changes state
//! is then *not* resent by itself, since resending it behind later calls
//! would change the order of a session's messages: it is refused, and the
//! client resends it with its `ref`. Calls that only read are resent.

use redis::Script;

const PRELUDE: &str = include_str!("lua/prelude.lua");

/// One script: its source and its hash.
pub(super) struct Lua {
    pub(super) source: String,
    pub(super) script: Script,
}

impl Lua {
    fn new(body: &str) -> Lua {
        let source = format!("{PRELUDE}\n{body}");
        let script = Script::new(&source);
        Lua { source, script }
    }

    /// `EVALSHA` of this script, no keys; the caller adds the arguments.
    pub(super) fn call(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash()).arg(0);
        cmd
    }
}

/// Every script, loaded once per node.
pub(super) struct Scripts {
    pub(super) say: Lua,
    pub(super) join: Lua,
    pub(super) leave: Lua,
    pub(super) load: Lua,
    pub(super) directory: Lua,
    pub(super) heartbeat: Lua,
    pub(super) depart: Lua,
    pub(super) page: Lua,
    pub(super) members: Lua,
    pub(super) typing: Lua,
    pub(super) ban: Lua,
    pub(super) unban: Lua,
    pub(super) kick: Lua,
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        Scripts {
            say: Lua::new(include_str!("lua/say.lua")),
            join: Lua::new(include_str!("lua/join.lua")),
            leave: Lua::new(include_str!("lua/leave.lua")),
            load: Lua::new(include_str!("lua/load.lua")),
            directory: Lua::new(include_str!("lua/directory.lua")),
            heartbeat: Lua::new(include_str!("lua/heartbeat.lua")),
            depart: Lua::new(include_str!("lua/depart.lua")),
            page: Lua::new(include_str!("lua/page.lua")),
            members: Lua::new(include_str!("lua/members.lua")),
            typing: Lua::new(include_str!("lua/typing.lua")),
            ban: Lua::new(include_str!("lua/ban.lua")),
            unban: Lua::new(include_str!("lua/unban.lua")),
            kick: Lua::new(include_str!("lua/kick.lua")),
        }
    }

    /// Every script, for `SCRIPT LOAD`.
    pub(super) fn all(&self) -> [&Lua; 13] {
        [
            &self.say,
            &self.join,
            &self.leave,
            &self.load,
            &self.directory,
            &self.heartbeat,
            &self.depart,
            &self.page,
            &self.members,
            &self.typing,
            &self.ban,
            &self.unban,
            &self.kick,
        ]
    }
}
