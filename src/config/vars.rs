//! Reading settings out of the key/value map: typed getters that record a
//! bad value (one line naming the variable) and go on with the default, so
//! one start-up names every bad variable at once.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use url::Url;

use crate::limits::Limit;

/// One bad or missing setting: the variable (with its `[applications.<id>]`
/// table when it is in one) and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

pub(crate) fn err(var: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.to_owned(),
        reason: reason.into(),
    }
}

/// Every bad setting a start-up found, in the order it read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    /// The first bad setting (a start-up with one bad variable has only it).
    pub fn first(&self) -> &ConfigError {
        // Never empty: built only from a non-empty list.
        &self.0[0]
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        Self(vec![e])
    }
}

/// The list of what went wrong so far; reading goes on past a bad value.
#[derive(Debug, Default)]
pub struct Problems(Vec<ConfigError>);

impl Problems {
    pub fn push(&mut self, e: ConfigError) {
        // One line per variable: a value wrong in two ways says the first.
        if !self.0.iter().any(|old| old.var == e.var) {
            self.0.push(e);
        }
    }

    /// `Ok(value)` when nothing went wrong, else every problem.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.0))
        }
    }
}

/// The values one reader sees: a table's own, over the top level's (an
/// application inherits every key it does not set), named for errors.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    own: &'a BTreeMap<String, String>,
    inherited: Option<&'a BTreeMap<String, String>>,
    /// `[applications.<id>] ` for an application's table.
    table: &'a str,
}

impl<'a> Vars<'a> {
    /// The top level: the environment over the TOML file's top-level keys.
    pub fn top(values: &'a BTreeMap<String, String>) -> Self {
        Self {
            own: values,
            inherited: None,
            table: "",
        }
    }

    /// An application's table over the top level; `table` names it in errors.
    pub fn table(
        own: &'a BTreeMap<String, String>,
        top: &'a BTreeMap<String, String>,
        table: &'a str,
    ) -> Self {
        Self {
            own,
            inherited: Some(top),
            table,
        }
    }

    /// The variable as an error names it: `OTP_LENGTH`, or
    /// `[applications.shop] OTP_LENGTH` when the table sets it (a value it
    /// inherits is the top level's, and named as such).
    pub fn name(&self, key: &str) -> String {
        if self.inherited.is_some() && self.own(key).is_some() {
            format!("{}{key}", self.table)
        } else {
            key.to_owned()
        }
    }

    /// The variable as its table names it, whether it sets it or not.
    pub fn in_table(&self, key: &str) -> String {
        format!("{}{key}", self.table)
    }

    /// Whether these are an application's table's values.
    pub fn is_table(&self) -> bool {
        self.inherited.is_some()
    }

    pub fn error(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        err(&self.name(key), reason)
    }

    /// The trimmed value, if set and not blank: the table's own, else the top level's.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        let read = |m: &'a BTreeMap<String, String>| {
            m.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
        };
        read(self.own).or_else(|| self.inherited.and_then(read))
    }

    /// Only the table's own value (for keys an application does not inherit).
    pub fn own(&self, key: &str) -> Option<&'a str> {
        self.own
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every key of the table and the top level (the table's first) that
    /// starts with `prefix`, with its value.
    pub fn with_prefix(&self, prefix: &str) -> Vec<(&'a str, &'a str)> {
        let mut out: Vec<(&'a str, &'a str)> = Vec::new();
        for m in std::iter::once(self.own).chain(self.inherited) {
            for (k, v) in m.range(prefix.to_owned()..) {
                if !k.starts_with(prefix) {
                    break;
                }
                if !out.iter().any(|(seen, _)| *seen == k) {
                    out.push((k.as_str(), v.trim()));
                }
            }
        }
        out
    }

    /// Reads `key` with `parse`, or `default` when unset; a bad value is
    /// recorded and `default` stands in for it.
    pub fn parse<T>(
        &self,
        problems: &mut Problems,
        key: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        match self.get(key) {
            None => default,
            Some(raw) => parse(raw).unwrap_or_else(|reason| {
                problems.push(self.error(key, reason));
                default
            }),
        }
    }

    /// A whole number in `range`.
    pub fn int<T>(
        &self,
        problems: &mut Problems,
        key: &str,
        default: T,
        range: RangeInclusive<T>,
    ) -> T
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        self.parse(problems, key, default, |raw| {
            let value: T = raw
                .parse()
                .map_err(|_| format!("{raw:?} is not a whole number"))?;
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(format!(
                    "must be between {} and {}",
                    range.start(),
                    range.end()
                ))
            }
        })
    }

    /// Milliseconds in `range`.
    pub fn millis(
        &self,
        problems: &mut Problems,
        key: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Duration {
        Duration::from_millis(self.int(problems, key, default, range))
    }

    /// Whole minutes in `range`.
    pub fn minutes(
        &self,
        problems: &mut Problems,
        key: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Duration {
        Duration::from_secs(60 * self.int(problems, key, default, range))
    }

    pub fn bool(&self, problems: &mut Problems, key: &str, default: bool) -> bool {
        self.parse(problems, key, default, parse_bool)
    }

    /// A limit such as `5/10m`.
    pub fn limit(&self, problems: &mut Problems, key: &str, default: Limit) -> Limit {
        self.parse(problems, key, default, parse_limit)
    }

    /// An `http://` or `https://` URL with a host, and no query or fragment.
    pub fn base_url(&self, problems: &mut Problems, key: &str) -> Option<Url> {
        self.parse(problems, key, None, |raw| parse_base_url(raw).map(Some))
    }
}

pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{v:?} is not true or false")),
    }
}

/// `N/WINDOW` with a window such as `30s`, `10m`, `1h` or `1d`.
pub fn parse_limit(raw: &str) -> Result<Limit, String> {
    let bad = || format!("{raw:?} is not a limit such as 5/10m (count/window: s, m, h or d)");
    let (count, window) = raw.split_once('/').ok_or_else(bad)?;
    let count: u64 = count.trim().parse().map_err(|_| bad())?;
    let window = window.trim();
    let (n, unit) = window.split_at(window.len().saturating_sub(1));
    let n: u64 = if n.is_empty() {
        1
    } else {
        n.parse().map_err(|_| bad())?
    };
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    if count == 0 || secs == 0 || secs > 7 * 86_400 {
        return Err(bad());
    }
    Ok(Limit::new(count, Duration::from_secs(secs)))
}

pub fn parse_base_url(v: &str) -> Result<Url, String> {
    let url = Url::parse(v).map_err(|e| format!("{v:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".to_owned());
    }
    Ok(url)
}

pub fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}
