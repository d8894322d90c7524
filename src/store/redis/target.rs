//! Where Redis is, from `REDIS_URL`: one node, or the seeds of a cluster.

/// Where to find Redis, from `REDIS_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    Single(String),
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// `redis://`, `rediss://` or `unix://` is one node; several comma-separated
    /// `redis://` seeds, or `redis+cluster://host:port[,host:port…]`, a cluster.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let seeds: Vec<String> = rest
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s.contains("://") {
                        s.to_owned()
                    } else {
                        format!("redis://{s}")
                    }
                })
                .collect();
            if seeds.is_empty() {
                return Err("redis+cluster:// needs at least one host:port".into());
            }
            return Ok(Self::Cluster(seeds));
        }
        let parts: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        for part in &parts {
            redis::parse_redis_url(part)
                .ok_or_else(|| format!("{part:?} is not a redis://, rediss:// or unix:// URL"))?;
        }
        match parts.as_slice() {
            [] => Err("empty".into()),
            [one] => Ok(Self::Single((*one).to_owned())),
            many => Ok(Self::Cluster(
                many.iter().map(|s| (*s).to_owned()).collect(),
            )),
        }
    }
}
