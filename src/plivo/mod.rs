//! Everything that speaks Plivo's protocols: the REST client (Message, Call,
//! PHLO run), request signatures, the callbacks Plivo posts (typed forms and
//! Plivo's rules about their values), the paths it posts them to, and the XML
//! answer templates.

pub mod callback;
pub mod client;
pub mod paths;
pub mod signature;
pub mod xml;

pub use client::{PlivoClient, PlivoError};
