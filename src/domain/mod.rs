//! The verification domain: applications, phone numbers, locales, one-time
//! codes, the keys that protect them, deliveries and the verification state
//! machine. Nothing here does I/O or knows about
//! actix, Redis or HTTP; every function that depends on time takes `now`.

pub mod application;
pub mod code;
pub mod delivery;
pub mod keyring;
pub mod locale;
pub mod phone;
pub mod plural;
pub mod random;
pub mod time;
pub mod verification;

pub use application::ApplicationId;
pub use code::{CodeLength, OtpCode};
pub use delivery::{CallOutcome, Delivery, DeliveryStatus, LOCAL_ID_PREFIX, UNKNOWN_STATUS};
pub use keyring::{Keyring, NumberKey};
pub use locale::Locale;
pub use phone::PhoneNumber;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use verification::{CallRef, Channel, Status, Verification, VerificationId};
