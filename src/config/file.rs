//! The `--config` TOML file: the same keys as the environment at its top
//! level (any case), and `[applications.<id>]` tables. Values are strings,
//! numbers, booleans or lists of strings (joined with commas).

use std::collections::BTreeMap;
use std::path::Path;

use crate::domain::ApplicationId;

use super::applications::Table;
use super::is_known_key;
use super::vars::{ConfigError, ConfigErrors, Problems, err};

/// The key that holds the applications' tables.
const APPLICATIONS: &str = "applications";

/// The file's top-level values and its applications' tables.
pub(super) fn read(path: &Path) -> Result<(BTreeMap<String, String>, Vec<Table>), ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err("--config", format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table = text.parse().map_err(|e| {
        err(
            "--config",
            format!("{} is not valid TOML: {e}", path.display()),
        )
    })?;
    let mut p = Problems::default();
    let mut top = BTreeMap::new();
    let mut tables = Vec::new();
    for (key, value) in table {
        if key == APPLICATIONS {
            tables = applications(value, &mut p);
            continue;
        }
        let upper = key.to_ascii_uppercase();
        if !is_known_key(&upper) {
            p.push(err(
                "--config",
                format!("unknown key {key:?} in {}", path.display()),
            ));
            continue;
        }
        match text_of(&upper, value) {
            Ok(text) => {
                top.insert(upper, text);
            }
            Err(e) => p.push(e),
        }
    }
    p.finish((top, tables))
}

/// `[applications.<id>]`: a table of tables, each id a valid one.
fn applications(value: toml::Value, p: &mut Problems) -> Vec<Table> {
    let toml::Value::Table(apps) = value else {
        p.push(err(
            APPLICATIONS,
            "must hold tables: [applications.<id>] with the application's settings",
        ));
        return Vec::new();
    };
    let mut tables = Vec::new();
    for (id, settings) in apps {
        let name = format!("[{APPLICATIONS}.{id}]");
        let Some(app) = ApplicationId::parse(&id) else {
            p.push(err(
                &name,
                "an application id is 1 to 32 of a-z, 0-9, _ and -",
            ));
            continue;
        };
        let toml::Value::Table(settings) = settings else {
            p.push(err(&name, "must be a table of the application's settings"));
            continue;
        };
        let mut values = BTreeMap::new();
        for (key, value) in settings {
            let upper = key.to_ascii_uppercase();
            match text_of(&format!("{name} {upper}"), value) {
                Ok(text) => {
                    values.insert(upper, text);
                }
                Err(e) => p.push(e),
            }
        }
        tables.push(Table { id: app, values });
    }
    tables
}

/// A value as the text the environment would hold.
fn text_of(var: &str, value: toml::Value) -> Result<String, ConfigError> {
    match value {
        toml::Value::String(s) => Ok(s),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                toml::Value::String(s) => Ok(s),
                _ => Err(err(var, "lists must hold strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|list| list.join(",")),
        _ => Err(err(
            var,
            "must be a string, number, boolean or list of strings",
        )),
    }
}
