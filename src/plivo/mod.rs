//! Everything that speaks Plivo's protocols: the REST client (Message, Call,
//! PHLO run), request signatures, and the XML answer templates.

pub mod client;
pub mod signature;

pub use client::{PlivoClient, PlivoError};
pub mod xml;
