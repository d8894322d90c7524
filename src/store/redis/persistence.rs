//! Whether the Redis in use keeps its data on disk (start-up warns when not).

use redis::Value;

/// What [`RedisStore::persistence`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// AOF, or RDB snapshots, are on.
    On,
    /// Neither AOF nor RDB snapshots (read from `CONFIG GET`).
    Off,
    /// `CONFIG GET` refused; `INFO` shows no AOF and no snapshot since Redis started.
    NoneSeen,
    /// Neither `CONFIG GET` nor `INFO` answered.
    Unknown,
}

/// Every text in a reply (a cluster answers `INFO` with one text per node).
pub(super) fn collect_text(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::BulkString(b) => out.push(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) | Value::VerbatimString { text: s, .. } => out.push(s.clone()),
        Value::Array(items) | Value::Set(items) => {
            items.iter().for_each(|v| collect_text(v, out));
        }
        Value::Map(pairs) => pairs.iter().for_each(|(_, v)| collect_text(v, out)),
        _ => {}
    }
}

/// Whether an `INFO persistence` text shows AOF on, or an RDB snapshot taken
/// since Redis started.
pub(super) fn persistent_by_info(info: &str) -> bool {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    field("aof_enabled") == Some("1")
        || field("rdb_saves")
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
        || field("rdb_last_bgsave_time_sec").is_some_and(|t| t != "-1")
}
