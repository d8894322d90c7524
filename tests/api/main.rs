//! The integration suite, linked as one test binary (zero-to-production's
//! layout): each module was once a binary of its own, and linking eighteen
//! copies of the server and its dependencies was most of a test build.
//! `cargo nextest` still runs every test in a process of its own, so tests
//! that install a log subscriber or set process state stay apart.
//!
//! Run one module with a name filter: `./scripts/test.sh abuse::`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod abuse;
mod api;
mod applications;
mod at_rest;
mod bad_input;
mod browser;
mod cli;
mod cluster;
mod demo;
mod events;
mod factors;
mod faults;
mod instances;
mod logging;
mod openapi;
mod ops;
mod plivo;
mod properties;
mod receipts;
mod slow_clients;
mod start_up;
mod store_contract;
mod voice;
mod whatsapp;
