//! The Lua scripts, one per operation that must be atomic, each prefixed
//! with `lua/prelude.lua` (the record's view, closing, counters), or, for
//! the scripts over rate-limit windows alone, with `lua/window.lua`.

use redis::aio::ConnectionLike;
use redis::{Arg, Cmd, ErrorKind, FromRedisValue, RedisResult, Script, ToRedisArgs};

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

/// A script call being built: `EVALSHA` of the script with its keys and
/// arguments, each list kept in one buffer. (redis-rs's `ScriptInvocation`
/// allocates a vector for every argument and copies them all again into the
/// command; a start passes some 45.) Keys and arguments may be added in any
/// order, as with `ScriptInvocation`: the keys go first.
pub(super) struct Invocation<'s> {
    script: &'s Script,
    keys: Cmd,
    args: Cmd,
}

impl<'s> Invocation<'s> {
    pub(super) fn new(script: &'s Script) -> Self {
        // Sized for the largest call (a gated start: some 12 keys and 45
        // arguments), so that adding them does not grow the buffers again
        // and again (measured: growing them cost more than the vectors they
        // replace).
        Self {
            script,
            keys: Cmd::with_capacity(16, 512),
            args: Cmd::with_capacity(48, 1024),
        }
    }

    /// Adds a key: the script's next `KEYS[i]`.
    pub(super) fn key<T: ToRedisArgs>(&mut self, key: T) -> &mut Self {
        self.keys.arg(key);
        self
    }

    /// Adds an argument: the script's next `ARGV[i]`.
    pub(super) fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.args.arg(arg);
        self
    }

    fn command(&self) -> Cmd {
        let keys = self.keys.args_iter();
        let (count, bytes) = keys.clone().chain(self.args.args_iter()).fold(
            (0, 0),
            |(count, bytes), item| match item {
                Arg::Simple(b) => (count + 1, bytes + b.len()),
                Arg::Cursor => (count, bytes),
            },
        );
        let hash = self.script.get_hash();
        // EVALSHA, the hash and the key count, then the items: one
        // allocation for each of the command's two buffers.
        let mut cmd = Cmd::with_capacity(3 + count, "EVALSHA".len() + hash.len() + 20 + bytes);
        cmd.arg("EVALSHA").arg(hash).arg(keys.len());
        for item in keys.chain(self.args.args_iter()) {
            if let Arg::Simple(bytes) = item {
                cmd.arg(bytes);
            }
        }
        cmd
    }

    /// Runs the script by its hash, loading it first when Redis does not
    /// know it (a restarted or flushed Redis, a new node), as
    /// `ScriptInvocation::invoke_async` does.
    pub(super) async fn invoke<T: FromRedisValue>(
        &self,
        conn: &mut impl ConnectionLike,
    ) -> RedisResult<T> {
        let cmd = self.command();
        match cmd.query_async(conn).await {
            Err(e) if e.kind() == ErrorKind::NoScriptError => {
                self.script.load_async(conn).await?;
                cmd.query_async(conn).await
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_sends_evalsha_with_its_keys_before_its_arguments_whatever_their_order() {
        let script = Script::new("return 1");
        let mut invocation = Invocation::new(&script);
        invocation.arg("a1").key("k1").arg(2_u64).key("k2").arg("");
        let cmd = invocation.command();
        let sent: Vec<Vec<u8>> = cmd
            .args_iter()
            .map(|a| match a {
                Arg::Simple(b) => b.to_vec(),
                Arg::Cursor => panic!("no cursor in a script call"),
            })
            .collect();
        let expected: Vec<&[u8]> = vec![
            b"EVALSHA",
            script.get_hash().as_bytes(),
            b"2",
            b"k1",
            b"k2",
            b"a1",
            b"2",
            b"",
        ];
        assert_eq!(sent, expected);
        // Packed as the same command written out in order.
        let mut in_order = redis::cmd("EVALSHA");
        in_order
            .arg(script.get_hash())
            .arg(2)
            .arg("k1")
            .arg("k2")
            .arg("a1")
            .arg(2_u64)
            .arg("");
        assert_eq!(cmd.get_packed_command(), in_order.get_packed_command());
    }
}
