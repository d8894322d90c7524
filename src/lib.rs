//! plivo-2fa: a self-hosted one-time-password verification server for Plivo.
//!
//! `domain` knows nothing of I/O; `store` and `plivo` build on it; `delivery`,
//! `abuse`, `events` and `apps` (each application's parts) combine them;
//! `service` holds the use cases; `routes` speaks HTTP and `jobs` runs the
//! schedule; `config` fills in each part's settings, and only `main` and
//! `startup` read it; only `startup` builds the concrete store, clients and App.

pub mod abuse;
pub mod apps;
pub mod config;
pub mod connections;
pub mod delivery;
pub mod domain;
pub mod drain;
pub mod events;
pub mod jobs;
pub mod limits;
pub mod plivo;
pub mod routes;
pub mod sandbox;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod view;
