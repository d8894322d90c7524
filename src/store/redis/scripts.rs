//! The Lua scripts, one per operation that must be atomic, each prefixed
//! with `lua/prelude.lua` (the record's view, closing, counters), or, for
//! the scripts over rate-limit windows alone, with `lua/window.lua`.

use redis::Script;

macro_rules! lua {
    ($($file:literal),+) => {
        concat!(include_str!("lua/prelude.lua"), $(include_str!($file)),+)
    };
}

/// A script over rate-limit windows, prefixed with `lua/window.lua` instead.
macro_rules! windows {
    ($file:literal) => {
        concat!(include_str!("lua/window.lua"), include_str!($file))
    };
}

pub(super) struct Scripts {
    pub(super) start: Script,
    pub(super) check: Script,
    pub(super) finish: Script,
    pub(super) delivery: Script,
    pub(super) resolve_call: Script,
    pub(super) answer_call: Script,
    pub(super) hit: Script,
    pub(super) claim_jobs: Script,
    pub(super) claim_fallback: Script,
    pub(super) factor_create: Script,
    pub(super) factor_attempt: Script,
    pub(super) factor_delete: Script,
    pub(super) queue_depth: Script,
}

impl Scripts {
    pub(super) fn load() -> Self {
        Self {
            start: Script::new(lua!("lua/window.lua", "lua/start.lua")),
            check: Script::new(lua!("lua/check.lua")),
            finish: Script::new(lua!("lua/finish.lua")),
            delivery: Script::new(lua!("lua/delivery.lua")),
            resolve_call: Script::new(lua!("lua/resolve_call.lua")),
            answer_call: Script::new(lua!("lua/answer_call.lua")),
            hit: Script::new(windows!("lua/hit.lua")),
            claim_jobs: Script::new(include_str!("lua/claim_jobs.lua")),
            claim_fallback: Script::new(lua!("lua/claim_fallback.lua")),
            factor_create: Script::new(lua!("lua/factor_index.lua", "lua/factor_create.lua")),
            factor_attempt: Script::new(lua!("lua/factor_index.lua", "lua/factor_attempt.lua")),
            factor_delete: Script::new(lua!("lua/factor_index.lua", "lua/factor_delete.lua")),
            queue_depth: Script::new(include_str!("lua/queue_depth.lua")),
        }
    }
}
