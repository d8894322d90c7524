//! The keys derived from `OTP_SECRET`: the keyed digest a typed code is checked
//! against, the AEADs that seal a copy of the code for re-sending, the number a
//! verification is for and the events waiting for the webhook, and the keyed
//! hash that names a phone number's Redis keys; and the AEAD that seals each
//! authenticator factor's TOTP secret and its identity, and the keyed hash
//! naming an identity's counters. No code and no phone number is
//! ever at rest in plaintext: each sealed value is bound to the record it
//! belongs to, and key names carry only keyed hashes of numbers.
//!
//! Several secrets may be configured for rotation: the first is used for new
//! material; every one is tried when checking and opening.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

use super::application::ApplicationId;
use super::code::OtpCode;
use super::phone::PhoneNumber;
use super::totp::TotpSecret;

type HmacSha256 = Hmac<Sha256>;

/// Shortest accepted `OTP_SECRET`, in bytes after base64 decoding.
pub const MIN_SECRET_BYTES: usize = 32;
const KEY_ID_BYTES: usize = 4;
const NONCE_BYTES: usize = 24;
/// Hex characters of the number hash used as a Redis Cluster hash tag: 65,536
/// buckets spread over 16,384 slots while revealing almost nothing.
pub const TAG_HEX_LEN: usize = 4;

const DIGEST_LABEL: &[u8] = b"plivo-2fa/v1/code-digest";
const SEAL_LABEL: &[u8] = b"plivo-2fa/v1/code-seal";
const NUMBER_SEAL_LABEL: &[u8] = b"plivo-2fa/v1/number-seal";
const EVENT_SEAL_LABEL: &[u8] = b"plivo-2fa/v1/event-seal";
const FACTOR_SEAL_LABEL: &[u8] = b"plivo-2fa/v1/factor-seal";
/// Prefixes an application's id in its identities' hashes.
const IDENTITY_LABEL: &[u8] = b"plivo-2fa/v1/identity:";
const NUMBER_LABEL: &[u8] = b"plivo-2fa/v1/number";
/// Prefixes an application's id in its numbers' keys.
const APP_NUMBER_LABEL: &[u8] = b"plivo-2fa/v1/app-number:";
const KEY_ID_LABEL: &[u8] = b"plivo-2fa/v1/key-id";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the sealed value is not valid base64 or too short")]
    Malformed,
    #[error("no configured secret opens the sealed value")]
    UnknownKey,
    #[error("the sealed value failed authentication")]
    Tampered,
}

struct KeySet {
    id: [u8; KEY_ID_BYTES],
    digest: HmacSha256,
    number: HmacSha256,
    seal: XChaCha20Poly1305,
    number_seal: XChaCha20Poly1305,
    event_seal: XChaCha20Poly1305,
    factor_seal: XChaCha20Poly1305,
}

/// Which of a key set's AEADs a value is sealed with (one key per kind, so a
/// sealed value of one kind never opens as another).
#[derive(Clone, Copy)]
enum Sealed {
    Code,
    Number,
    Event,
    Factor,
}

impl KeySet {
    fn cipher(&self, kind: Sealed) -> &XChaCha20Poly1305 {
        match kind {
            Sealed::Code => &self.seal,
            Sealed::Number => &self.number_seal,
            Sealed::Event => &self.event_seal,
            Sealed::Factor => &self.factor_seal,
        }
    }
}

impl KeySet {
    fn derive(secret: &[u8]) -> Self {
        let sub = |label: &[u8]| -> [u8; 32] {
            let mut mac = new_mac(secret);
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        let id_full = sub(KEY_ID_LABEL);
        let mut id = [0u8; KEY_ID_BYTES];
        id.copy_from_slice(&id_full[..KEY_ID_BYTES]);
        Self {
            id,
            digest: new_mac(&sub(DIGEST_LABEL)),
            number: new_mac(&sub(NUMBER_LABEL)),
            seal: XChaCha20Poly1305::new(&sub(SEAL_LABEL).into()),
            number_seal: XChaCha20Poly1305::new(&sub(NUMBER_SEAL_LABEL).into()),
            event_seal: XChaCha20Poly1305::new(&sub(EVENT_SEAL_LABEL).into()),
            factor_seal: XChaCha20Poly1305::new(&sub(FACTOR_SEAL_LABEL).into()),
        }
    }
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    }
}

/// Where a phone number's records live: a keyed hash of the number and the
/// short hash tag that pins all of its keys to one Redis Cluster slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberKey {
    pub hash: String,
    pub tag: String,
}

/// The derived keys for every configured secret; the first is primary.
pub struct Keyring {
    sets: Vec<KeySet>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({} secret(s))", self.sets.len())
    }
}

impl Keyring {
    /// Builds the keyring; `secrets` must be non-empty (config guarantees it).
    pub fn new(secrets: &[SecretSlice<u8>]) -> Self {
        let mut sets: Vec<KeySet> = secrets
            .iter()
            .map(|s| KeySet::derive(s.expose_secret()))
            .collect();
        if sets.is_empty() {
            sets.push(KeySet::derive(&random_secret()));
        }
        Self { sets }
    }

    /// A keyring with one random secret (sandbox mode: codes do not outlive the process).
    pub fn random() -> Self {
        Self {
            sets: vec![KeySet::derive(&random_secret())],
        }
    }

    fn primary(&self) -> &KeySet {
        &self.sets[0]
    }

    /// Hex HMAC-SHA256 of the code under every configured secret, primary first.
    pub fn digests(&self, code: &OtpCode) -> Vec<String> {
        self.sets
            .iter()
            .map(|set| {
                let mut mac = set.digest.clone();
                mac.update(code.expose().as_bytes());
                super::lower_hex(&mac.finalize().into_bytes())
            })
            .collect()
    }

    /// The digest stored with a new verification (primary secret).
    pub fn primary_digest(&self, code: &OtpCode) -> String {
        let mut mac = self.primary().digest.clone();
        mac.update(code.expose().as_bytes());
        super::lower_hex(&mac.finalize().into_bytes())
    }

    /// Seals the code for re-sending, bound to `context` (the verification id) so
    /// a sealed copy cannot be moved to another record.
    pub fn seal(&self, code: &OtpCode, context: &str) -> String {
        self.seal_as(Sealed::Code, code.expose().as_bytes(), context)
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<OtpCode, SealError> {
        let plain = self.open_as(Sealed::Code, sealed, context)?;
        let digits = String::from_utf8(plain).map_err(|_| SealError::Tampered)?;
        Ok(OtpCode::from_digits(digits))
    }

    /// Seals the number a verification is for, bound to `context` (its id).
    pub fn seal_number(&self, number: &PhoneNumber, context: &str) -> String {
        self.seal_as(Sealed::Number, number.as_e164().as_bytes(), context)
    }

    /// Opens a number sealed by [`Keyring::seal_number`] under any configured secret.
    pub fn open_number(&self, sealed: &str, context: &str) -> Result<PhoneNumber, SealError> {
        let plain = self.open_as(Sealed::Number, sealed, context)?;
        let e164 = String::from_utf8(plain).map_err(|_| SealError::Tampered)?;
        Ok(PhoneNumber::from_trusted_e164(e164))
    }

    /// Seals an event's body while it waits for the webhook, bound to `context` (its id).
    pub fn seal_event(&self, body: &str, context: &str) -> String {
        self.seal_as(Sealed::Event, body.as_bytes(), context)
    }

    pub fn open_event(&self, sealed: &str, context: &str) -> Result<String, SealError> {
        let plain = self.open_as(Sealed::Event, sealed, context)?;
        String::from_utf8(plain).map_err(|_| SealError::Tampered)
    }

    /// Seals a factor's TOTP secret, bound to `context` (the factor's id).
    pub fn seal_totp_secret(&self, secret: &TotpSecret, context: &str) -> String {
        self.seal_as(Sealed::Factor, secret.expose(), context)
    }

    /// Opens a secret sealed by [`Keyring::seal_totp_secret`] under any configured secret.
    pub fn open_totp_secret(&self, sealed: &str, context: &str) -> Result<TotpSecret, SealError> {
        self.open_as(Sealed::Factor, sealed, context)
            .map(TotpSecret::from_bytes)
    }

    /// Seals what a factor says about its user (identity, friendly name),
    /// bound to its id; its secret's seal is bound otherwise, so neither
    /// opens as the other.
    pub fn seal_factor_profile(&self, profile: &str, id: &str) -> String {
        self.seal_as(Sealed::Factor, profile.as_bytes(), &profile_context(id))
    }

    pub fn open_factor_profile(&self, sealed: &str, id: &str) -> Result<String, SealError> {
        let plain = self.open_as(Sealed::Factor, sealed, &profile_context(id))?;
        String::from_utf8(plain).map_err(|_| SealError::Tampered)
    }

    /// The keyed hash naming an identity's counters in application `app`
    /// (primary secret only, like a number's), with its short hash tag.
    pub fn identity_key(&self, app: &ApplicationId, identity: &str) -> NumberKey {
        let mut mac = self.primary().number.clone();
        mac.update(IDENTITY_LABEL);
        mac.update(app.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(identity.as_bytes());
        let hash = super::lower_hex(&mac.finalize().into_bytes());
        let tag = hash[..TAG_HEX_LEN].to_owned();
        NumberKey { hash, tag }
    }

    /// Whether a configured secret made this sealed value (whatever its kind).
    pub fn knows_seal(&self, sealed: &str) -> bool {
        B64.decode(sealed)
            .ok()
            .and_then(|raw| raw.get(..KEY_ID_BYTES).map(<[u8]>::to_vec))
            .is_some_and(|id| self.sets.iter().any(|s| s.id == id.as_slice()))
    }

    /// Key id, nonce and ciphertext, in standard base64, under the primary secret.
    fn seal_as(&self, kind: Sealed, msg: &[u8], context: &str) -> String {
        let set = self.primary();
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg,
            aad: context.as_bytes(),
        };
        // Encryption only fails for messages beyond the cipher's length limit.
        let ciphertext = set
            .cipher(kind)
            .encrypt(&nonce, payload)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(KEY_ID_BYTES + NONCE_BYTES + ciphertext.len());
        out.extend_from_slice(&set.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        B64.encode(out)
    }

    fn open_as(&self, kind: Sealed, sealed: &str, context: &str) -> Result<Vec<u8>, SealError> {
        let raw = B64.decode(sealed).map_err(|_| SealError::Malformed)?;
        if raw.len() <= KEY_ID_BYTES + NONCE_BYTES {
            return Err(SealError::Malformed);
        }
        let (id, rest) = raw.split_at(KEY_ID_BYTES);
        let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
        let set = self
            .sets
            .iter()
            .find(|s| s.id == id)
            .ok_or(SealError::UnknownKey)?;
        let payload = Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        set.cipher(kind)
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| SealError::Tampered)
    }

    /// The keyed hash naming a number's keys (primary secret only: rotating
    /// `OTP_SECRET` orphans lookups by number of verifications still pending,
    /// which then simply start afresh).
    pub fn number_key(&self, number: &PhoneNumber) -> NumberKey {
        self.app_number_key(&ApplicationId::default(), number)
    }

    /// The key of a number's records in application `app`: the default
    /// application's is [`Keyring::number_key`], unchanged from before there
    /// were applications; another's also hashes its id, so the same number
    /// has other keys (pointer, counters, hash tag) in every application.
    pub fn app_number_key(&self, app: &ApplicationId, number: &PhoneNumber) -> NumberKey {
        let mut mac = self.primary().number.clone();
        if !app.is_default() {
            // An id holds no NUL: "shop" + NUL + number is never another pair.
            mac.update(APP_NUMBER_LABEL);
            mac.update(app.as_str().as_bytes());
            mac.update(&[0]);
        }
        mac.update(number.as_e164().as_bytes());
        let hash = super::lower_hex(&mac.finalize().into_bytes());
        let tag = hash[..TAG_HEX_LEN].to_owned();
        NumberKey { hash, tag }
    }
}

fn profile_context(id: &str) -> String {
    format!("{id}/profile")
}

fn random_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    secret
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::code::CodeLength;

    fn secret(b: u8) -> SecretSlice<u8> {
        SecretSlice::from(vec![b; 32])
    }

    /// The builds choose the cipher crates' backends (.cargo/config.toml):
    /// whichever runs must compute XChaCha20-Poly1305 exactly, or values
    /// sealed by one build would not open in another. Appendix A.3.1 of
    /// draft-irtf-cfrg-xchacha-03 (also checked against pycryptodome).
    #[test]
    fn the_seal_cipher_matches_the_xchacha20_poly1305_specification_vector() {
        let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
        let key: Vec<u8> = (0x80..=0x9f).collect();
        let nonce: Vec<u8> = (0x40..=0x57).collect();
        let expected = concat!(
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb",
            "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452",
            "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9",
            "21f9664c97637da9768812f615c68b13b52e",
            // the tag
            "c0875924c1c7987947deafd8780acf49",
        );
        let cipher = XChaCha20Poly1305::new_from_slice(&key).unwrap();
        let nonce = XNonce::from_slice(&nonce);
        let sealed = cipher
            .encrypt(
                nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap();
        assert_eq!(hex::encode(&sealed), expected);
        let opened = cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed,
                    aad: &aad,
                },
            )
            .unwrap();
        assert_eq!(opened, plaintext);
    }

    fn code(s: &str) -> OtpCode {
        OtpCode::parse(s, CodeLength::default()).unwrap()
    }

    #[test]
    fn a_sealed_code_opens_to_the_same_digits() {
        let ring = Keyring::new(&[secret(1)]);
        let sealed = ring.seal(&code("004211"), "VEabc");
        assert!(!sealed.contains("004211"));
        assert_eq!(ring.open(&sealed, "VEabc").unwrap().expose(), "004211");
    }

    #[test]
    fn a_sealed_code_does_not_open_for_another_verification() {
        let ring = Keyring::new(&[secret(1)]);
        let sealed = ring.seal(&code("004211"), "VEabc");
        assert_eq!(ring.open(&sealed, "VEabd").err(), Some(SealError::Tampered));
    }

    #[test]
    fn a_tampered_seal_is_refused() {
        let ring = Keyring::new(&[secret(1)]);
        let mut raw = B64.decode(ring.seal(&code("123456"), "id")).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(
            ring.open(&B64.encode(raw), "id").err(),
            Some(SealError::Tampered)
        );
        assert_eq!(
            ring.open("not base64!", "id").err(),
            Some(SealError::Malformed)
        );
    }

    #[test]
    fn digests_depend_on_the_code_and_the_secret() {
        let a = Keyring::new(&[secret(1)]);
        let b = Keyring::new(&[secret(2)]);
        assert_ne!(
            a.primary_digest(&code("123456")),
            a.primary_digest(&code("123457"))
        );
        assert_ne!(
            a.primary_digest(&code("123456")),
            b.primary_digest(&code("123456"))
        );
        assert_eq!(a.primary_digest(&code("123456")).len(), 64);
    }

    #[test]
    fn a_rotated_keyring_still_checks_and_opens_what_the_old_secret_made() {
        let old = Keyring::new(&[secret(1)]);
        let rotated = Keyring::new(&[secret(2), secret(1)]);
        let c = code("555123");
        let stored = old.primary_digest(&c);
        assert!(rotated.digests(&c).contains(&stored));
        let sealed = old.seal(&c, "id");
        assert_eq!(rotated.open(&sealed, "id").unwrap().expose(), "555123");
    }

    #[test]
    fn a_sealed_number_opens_for_its_own_record_only_and_hides_every_digit() {
        let ring = Keyring::new(&[secret(1)]);
        let n = PhoneNumber::parse("+14155550100").unwrap();
        let sealed = ring.seal_number(&n, "VEabc");
        for form in ["+14155550100", "14155550100", "4155550100", "5550100"] {
            assert!(!sealed.contains(form), "{form} in {sealed}");
        }
        assert_eq!(ring.open_number(&sealed, "VEabc").unwrap(), n);
        assert_eq!(
            ring.open_number(&sealed, "VEabd").err(),
            Some(SealError::Tampered)
        );
        // A sealed number is no sealed code, nor the other way round.
        assert!(ring.open(&sealed, "VEabc").is_err());
        let code_seal = ring.seal(&code("123456"), "VEabc");
        assert!(ring.open_number(&code_seal, "VEabc").is_err());
        assert_ne!(
            sealed,
            ring.seal_number(&n, "VEabc"),
            "a fresh nonce each time"
        );
    }

    #[test]
    fn sealed_numbers_and_events_open_after_a_rotation_and_not_after_the_secret_is_dropped() {
        let old = Keyring::new(&[secret(1)]);
        let rotated = Keyring::new(&[secret(2), secret(1)]);
        let dropped = Keyring::new(&[secret(2)]);
        let n = PhoneNumber::parse("+447400123456").unwrap();
        let sealed = old.seal_number(&n, "VEabc");
        assert_eq!(rotated.open_number(&sealed, "VEabc").unwrap(), n);
        assert!(rotated.knows_seal(&sealed));
        assert_eq!(
            dropped.open_number(&sealed, "VEabc").err(),
            Some(SealError::UnknownKey)
        );
        assert!(!dropped.knows_seal(&sealed));
        let event = old.seal_event("{\"to\":\"+447400123456\"}", "evt_1");
        assert!(!event.contains("447400123456"));
        assert_eq!(
            rotated.open_event(&event, "evt_1").unwrap(),
            "{\"to\":\"+447400123456\"}"
        );
        assert!(rotated.open_event(&event, "evt_2").is_err());
    }

    #[test]
    fn a_sealed_totp_secret_opens_after_a_rotation_for_its_own_factor_only() {
        let old = Keyring::new(&[secret(1)]);
        let rotated = Keyring::new(&[secret(2), secret(1)]);
        let dropped = Keyring::new(&[secret(2)]);
        let totp = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let sealed = old.seal_totp_secret(&totp, "YFabc");
        assert!(!sealed.contains(&totp.base32()));
        let opened = rotated.open_totp_secret(&sealed, "YFabc").unwrap();
        assert_eq!(opened.expose(), totp.expose());
        assert_eq!(
            rotated.open_totp_secret(&sealed, "YFabd").err(),
            Some(SealError::Tampered)
        );
        assert_eq!(
            dropped.open_totp_secret(&sealed, "YFabc").err(),
            Some(SealError::UnknownKey)
        );
        // Neither a code's seal nor the factor's profile opens as its secret.
        let profile = old.seal_factor_profile("{\"identity\":\"u\"}", "YFabc");
        assert!(old.open_totp_secret(&profile, "YFabc").is_err());
        assert_eq!(
            old.open_factor_profile(&profile, "YFabc").unwrap(),
            "{\"identity\":\"u\"}"
        );
        assert!(old.open(&sealed, "YFabc").is_err());
    }

    #[test]
    fn an_identity_has_its_own_key_in_every_application() {
        let ring = Keyring::new(&[secret(1)]);
        let app = |id: &str| ApplicationId::parse(id).unwrap();
        let a = ring.identity_key(&app("shop"), "user-1");
        assert_eq!(a, ring.identity_key(&app("shop"), "user-1"));
        assert_ne!(a, ring.identity_key(&app("bank"), "user-1"));
        assert_ne!(a, ring.identity_key(&app("shop"), "user-2"));
        assert!(!a.hash.contains("user"));
        assert_eq!(a.tag.len(), TAG_HEX_LEN);
    }

    #[test]
    fn number_keys_are_stable_and_carry_a_short_tag() {
        let ring = Keyring::new(&[secret(1)]);
        let n = PhoneNumber::parse("+14155550100").unwrap();
        let k1 = ring.number_key(&n);
        assert_eq!(k1, ring.number_key(&n));
        assert_eq!(k1.tag.len(), TAG_HEX_LEN);
        assert!(k1.hash.starts_with(&k1.tag));
        assert!(!k1.hash.contains("4155550100"));
    }

    #[test]
    fn a_number_has_other_keys_in_every_application_but_the_default_keeps_its_own() {
        let ring = Keyring::new(&[secret(1)]);
        let n = PhoneNumber::parse("+14155550100").unwrap();
        let app = |id: &str| ApplicationId::parse(id).unwrap();
        assert_eq!(
            ring.app_number_key(&app("default"), &n),
            ring.number_key(&n)
        );
        let shop = ring.app_number_key(&app("shop"), &n);
        let bank = ring.app_number_key(&app("bank"), &n);
        assert_ne!(shop, ring.number_key(&n));
        assert_ne!(shop, bank);
        assert_eq!(shop, ring.app_number_key(&app("shop"), &n));
    }
}
