//! Where Redis is, from `REDIS_URL`: one node, or the seeds of a cluster.

/// Where to find Redis, from `REDIS_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    Single(String),
    Cluster(Vec<String>),
}

/// Redis's port when a URL names none.
const DEFAULT_PORT: u16 = 6379;

impl RedisTarget {
    /// The host and port of every node named (none for a `unix://` socket).
    pub fn endpoints(&self) -> Vec<(String, u16)> {
        let urls: Vec<&String> = match self {
            Self::Single(url) => vec![url],
            Self::Cluster(seeds) => seeds.iter().collect(),
        };
        urls.into_iter()
            .filter_map(|u| {
                let url = url::Url::parse(u).ok()?;
                let host = url.host_str().filter(|h| !h.is_empty())?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                Some((host.to_owned(), url.port().unwrap_or(DEFAULT_PORT)))
            })
            .collect()
    }

    /// Where Redis is, for messages: `host:port[, host:port…]` or the socket's URL.
    pub fn location(&self) -> String {
        let endpoints = self.endpoints();
        if endpoints.is_empty() {
            return match self {
                Self::Single(url) => url.clone(),
                Self::Cluster(seeds) => seeds.join(", "),
            };
        }
        endpoints
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

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
