//! One contract, two stores: every case runs against the in-memory store and
//! against real Redis, so both keep the same semantics.

use std::sync::Arc;
use std::time::Duration;

use plivo_2fa::domain::factor::UNVERIFIED_FACTOR_TTL;
use plivo_2fa::domain::verification::FallbackSkip;
use plivo_2fa::domain::verification::{CheckResult, ResendRefusal, SendPolicy};
use plivo_2fa::domain::{
    ApplicationId, Channel, CodeLength, Delivery, Keyring, Locale, NumberKey, OtpCode, PhoneNumber,
    Status, Timestamp, Verification, VerificationId,
};
use plivo_2fa::domain::{CallRef, FallbackChannels, FallbackTrigger};
use plivo_2fa::domain::{
    Factor, FactorId, FactorStage, FactorStatus, FriendlyName, Identity, TotpDigits, TotpSecret,
};
use plivo_2fa::store::redis::RedisTarget;
use plivo_2fa::store::{
    Admission, AdmissionStore, AttemptOutcome, CallStore, CallView, CheckTarget, CounterStore,
    DeliveryUpdate, FactorAttempt, FactorCreated, FactorLimits, FactorStore, FailureWindows,
    Failures, FallbackClaim, Feed, Finish, Gate, Gated, Hit, JobStore, MemoryStore,
    NewVerification, Nonce, Opening, Owner, Recording, RedisStore, SendBudget, StartOutcome,
    StoredFactor, VerificationStore,
};
use secrecy::SecretSlice;

const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);
const LIFETIME: Duration = Duration::from_secs(600);
const POLICY: SendPolicy = SendPolicy {
    cooldown_ms: 30_000,
    max_sends: 3,
};
/// Generous: only the cases about the budget spend it.
const BUDGET: SendBudget = SendBudget {
    max: 100,
    window_ms: 600_000,
};
const WINDOWS: FailureWindows = FailureWindows {
    lockout_ms: 3_600_000,
    day_ms: 86_400_000,
};

fn at(secs: u64) -> Timestamp {
    T0.plus(Duration::from_secs(secs))
}

struct Fixture {
    keyring: Keyring,
}

impl Fixture {
    fn new() -> Self {
        Self::with(Keyring::random())
    }

    fn with(keyring: Keyring) -> Self {
        Self { keyring }
    }

    fn new_verification(
        &self,
        number: &PhoneNumber,
        code: &OtpCode,
        now: Timestamp,
    ) -> NewVerification {
        let key = self.keyring.number_key(number);
        let id = VerificationId::generate(&key.tag);
        NewVerification {
            digest: self.keyring.primary_digest(code),
            sealed: self.keyring.seal(code, id.as_str()),
            verification: Verification {
                id,
                application: ApplicationId::default(),
                to: number.clone(),
                channel: Channel::Sms,
                locale: Locale::default(),
                status: Status::Pending,
                created_at: now,
                expires_at: now.plus(LIFETIME),
                attempts: 0,
                max_attempts: 5,
                sends: 1,
                last_sent_at: now,
                deliveries: vec![],
                fallbacks: Vec::new(),
            },
        }
    }

    async fn open<S: VerificationStore>(
        &self,
        store: &S,
        number: &PhoneNumber,
        now: Timestamp,
    ) -> (Verification, OtpCode) {
        let code = OtpCode::generate(CodeLength::default());
        let new = self.new_verification(number, &code, now);
        match store
            .start(new, &self.keyring.number_key(number), POLICY, BUDGET, now)
            .await
            .unwrap()
        {
            StartOutcome::Created(v) => (v, code),
            other => panic!("expected a new verification, got {other:?}"),
        }
    }

    /// A verification opened on `channel`, and its code.
    async fn open_on<S: VerificationStore>(
        &self,
        store: &S,
        number: &PhoneNumber,
        channel: Channel,
        now: Timestamp,
    ) -> (Verification, OtpCode) {
        let code = OtpCode::generate(CodeLength::default());
        let mut new = self.new_verification(number, &code, now);
        new.verification.channel = channel;
        match store
            .start(new, &self.keyring.number_key(number), POLICY, BUDGET, now)
            .await
            .unwrap()
        {
            StartOutcome::Created(v) => (v, code),
            other => panic!("expected a new verification, got {other:?}"),
        }
    }

    async fn check<S: VerificationStore>(
        &self,
        store: &S,
        number: &PhoneNumber,
        code: &str,
        now: Timestamp,
    ) -> Option<(CheckResult, Verification)> {
        let code = OtpCode::parse(code, CodeLength::default()).unwrap();
        let key = self.keyring.number_key(number);
        store
            .check(
                CheckTarget::Number { number, key: &key },
                Owner::Any,
                &self.keyring.digests(&code),
                WINDOWS,
                now,
            )
            .await
            .unwrap()
    }
}

fn number() -> PhoneNumber {
    PhoneNumber::parse(&crate::common::random_number()).unwrap()
}

fn wrong_code(code: &OtpCode) -> String {
    crate::common::wrong(code.expose())
}

/// The keyring of the contract's Redis stores, which the factor cases seal
/// their secrets with too (as the server seals with the store's own).
fn store_keyring() -> Keyring {
    Keyring::new(&[SecretSlice::from(vec![42u8; 32])])
}

async fn redis_store() -> RedisStore {
    redis_store_with(&crate::common::unique_prefix(), store_keyring()).await
}

/// A store on the test Redis under `prefix`, sealing numbers with `keyring`.
async fn redis_store_with(prefix: &str, keyring: Keyring) -> RedisStore {
    let target = RedisTarget::parse(&crate::common::redis_url()).unwrap();
    RedisStore::connect(&target, prefix, Duration::from_secs(2), Arc::new(keyring))
        .await
        .unwrap()
}

async fn cluster_store() -> RedisStore {
    let target = RedisTarget::parse(&crate::common::redis_cluster_url()).unwrap();
    assert!(matches!(target, RedisTarget::Cluster(_)));
    RedisStore::connect(
        &target,
        &crate::common::unique_prefix(),
        Duration::from_secs(2),
        Arc::new(store_keyring()),
    )
    .await
    .unwrap()
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&plivo_2fa::store::MemoryStore::new()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&super::redis_store().await).await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&super::cluster_store().await).await;
                }
            )*
        }
    };
}

contract!(
    a_started_verification_reads_back_the_same,
    the_right_code_approves_once_and_closes,
    wrong_codes_count_down_to_max_attempts_reached,
    a_check_after_expiry_settles_as_expired_without_counting,
    starting_again_within_the_cooldown_is_refused_and_after_it_re_sends_the_sealed_code,
    sends_stop_at_the_limit,
    a_new_verification_replaces_one_that_ended,
    cancel_and_fail_only_end_a_pending_verification,
    deliveries_are_recorded_and_never_move_backwards,
    a_delivery_recorded_with_a_job_schedules_it_even_when_its_verification_is_gone,
    a_receipt_names_a_delivery_recorded_without_plivos_id,
    numbers_do_not_see_each_others_verifications,
    fifty_concurrent_right_checks_approve_exactly_once,
    a_check_by_id_reaches_the_verification,
    every_wrong_code_counts_against_the_number_whatever_ends_the_verification,
    a_start_refused_by_the_cooldown_or_the_send_limit_spends_none_of_the_budget,
    a_factor_reads_back_only_for_its_application_and_is_deleted_once,
    fifty_concurrent_codes_of_one_step_approve_exactly_once,
    a_factor_locks_after_max_attempts_wrong_in_a_row_and_its_identity_stops_at_the_ceiling,
    a_factor_only_takes_codes_at_the_stage_its_status_allows,
    an_identity_has_at_most_its_factors_until_one_is_deleted_or_abandoned,
    an_answer_takes_its_nonce_and_resolves_the_call_in_one_step,
    an_answer_for_an_unknown_call_still_takes_its_nonce,
    fifty_concurrent_answers_with_one_nonce_resolve_the_call_once,
    a_call_resolves_to_its_verifications_application_locale_and_expiry,
    a_whatsapp_verification_falls_back_to_sms_then_to_voice_each_once_with_the_same_code,
    the_fallback_stops_once_a_message_is_read_or_the_sends_are_used_up,
    an_sms_verification_falls_back_to_voice_alone_and_never_to_sms,
    a_receipt_without_its_type_keeps_the_channel_of_the_message_it_names,
    fifty_concurrent_fallback_claims_take_the_step_once,
    hits_in_order_count_each_counter_and_stop_after_the_first_over_its_limit,
    hits_in_order_count_as_adding_one_to_each_would,
    a_gate_reads_the_numbers_wrong_codes_and_counts_its_hits_only_when_nothing_refuses,
    a_paused_destination_refuses_before_any_hit_is_counted,
    adding_and_reading_the_previous_window_counts_each_counter_once,
    a_gated_start_refused_by_its_gate_opens_nothing_and_spends_none_of_the_budget,
    a_gated_start_past_its_gate_opens_and_feeds_only_a_new_verification,
);

const NONCE_TTL_MS: u64 = 600_000;

/// A pending verification with a registered call reference, and its code.
async fn called<S: VerificationStore + CallStore>(
    f: &Fixture,
    store: &S,
) -> (Verification, OtpCode, CallRef) {
    let (v, code) = f.open(store, &number(), at(0)).await;
    let call = CallRef::generate(v.id.tag());
    store
        .register_call(&call, &v.id, v.expires_at, at(0))
        .await
        .unwrap();
    (v, code, call)
}

async fn an_answer_takes_its_nonce_and_resolves_the_call_in_one_step<
    S: VerificationStore + CallStore,
>(
    store: &S,
) {
    let f = Fixture::new();
    let (v, code, call) = called(&f, store).await;
    let nonce = crate::common::nonce();
    let Nonce::First(Some(found)) = store
        .answer_call(&call, &nonce, NONCE_TTL_MS, at(1))
        .await
        .unwrap()
    else {
        panic!("the first answer resolves the call");
    };
    let sealed = found
        .sealed
        .clone()
        .expect("a pending verification's call resolves with its sealed code");
    assert_eq!(found, CallView::of(&v, Some(sealed.clone())));
    assert_eq!(
        f.keyring.open(&sealed, v.id.as_str()).unwrap().expose(),
        code.expose()
    );
    assert_eq!(
        store
            .answer_call(&call, &nonce, NONCE_TTL_MS, at(2))
            .await
            .unwrap(),
        Nonce::Replayed,
        "the same nonce again resolves nothing"
    );
    let other = crate::common::nonce();
    assert!(matches!(
        store.answer_call(&call, &other, NONCE_TTL_MS, at(3)).await.unwrap(),
        Nonce::First(Some(ref again)) if again.id == v.id
    ));
    // As resolve_call reads it.
    let resolved = store.resolve_call(&call, at(4)).await.unwrap();
    assert_eq!(resolved, Some(CallView::of(&v, Some(sealed))));
}

async fn a_call_resolves_to_its_verifications_application_locale_and_expiry<
    S: VerificationStore + CallStore,
>(
    store: &S,
) {
    let f = Fixture::new();
    let n = number();
    let code = OtpCode::generate(CodeLength::default());
    let mut new = f.new_verification(&n, &code, at(0));
    new.verification.application = ApplicationId::parse("shop").unwrap();
    new.verification.locale = Locale::parse("fr-FR").unwrap();
    let key = f.keyring.number_key(&n);
    let StartOutcome::Created(v) = store.start(new, &key, POLICY, BUDGET, at(0)).await.unwrap()
    else {
        panic!("expected a new verification");
    };
    let call = CallRef::generate(v.id.tag());
    store
        .register_call(&call, &v.id, v.expires_at, at(0))
        .await
        .unwrap();
    let found = store
        .resolve_call(&call, at(1))
        .await
        .unwrap()
        .expect("a registered call resolves");
    assert_eq!(found.application.as_str(), "shop");
    assert_eq!(found.locale.as_str(), "fr-FR");
    assert_eq!(found.expires_at, v.expires_at);
    assert_eq!(found.status_at(at(1)), Status::Pending);
    assert_eq!(found.status_at(v.expires_at), Status::Expired);
    let sealed = found.sealed.expect("a pending verification's sealed code");
    assert_eq!(
        f.keyring.open(&sealed, v.id.as_str()).unwrap().expose(),
        code.expose()
    );
    // Once the verification ends, its call still resolves, without a code.
    store
        .finish(&v.id, Owner::Any, Finish::Cancel, at(2))
        .await
        .unwrap();
    let ended = store.resolve_call(&call, at(3)).await.unwrap();
    assert!(
        matches!(&ended, Some(e) if e.status == Status::Canceled && e.sealed.is_none()),
        "{ended:?}"
    );
}

async fn an_answer_for_an_unknown_call_still_takes_its_nonce<S: VerificationStore + CallStore>(
    store: &S,
) {
    let f = Fixture::new();
    let (v, _, _) = called(&f, store).await;
    let unknown = CallRef::generate(v.id.tag());
    let nonce = crate::common::nonce();
    assert_eq!(
        store
            .answer_call(&unknown, &nonce, NONCE_TTL_MS, at(1))
            .await
            .unwrap(),
        Nonce::First(None)
    );
    assert_eq!(
        store
            .answer_call(&unknown, &nonce, NONCE_TTL_MS, at(2))
            .await
            .unwrap(),
        Nonce::Replayed
    );
}

async fn fifty_concurrent_answers_with_one_nonce_resolve_the_call_once<
    S: VerificationStore + CallStore,
>(
    store: &S,
) {
    let f = Fixture::new();
    let (_, _, call) = called(&f, store).await;
    let nonce = crate::common::nonce();
    let answers = futures::future::join_all(
        (0..50).map(|_| store.answer_call(&call, &nonce, NONCE_TTL_MS, at(1))),
    )
    .await;
    let first = answers
        .iter()
        .filter(|a| matches!(a, Ok(Nonce::First(Some(_)))))
        .count();
    let replayed = answers
        .iter()
        .filter(|a| matches!(a, Ok(Nonce::Replayed)))
        .count();
    assert_eq!((first, replayed), (1, 49));
}

async fn a_started_verification_reads_back_the_same<S: VerificationStore>(store: &S) {
    let f = Fixture::new();
    let n = number();
    let (v, _) = f.open(store, &n, T0).await;
    let got = store.get(&v.id, Owner::Any, T0).await.unwrap().unwrap();
    assert_eq!(got, v);
    assert_eq!(got.status, Status::Pending);
    assert_eq!(got.to, n);
    // And for an application other than the default, whose records name it.
    let code = OtpCode::generate(CodeLength::default());
    let other = number();
    let mut new = f.new_verification(&other, &code, T0);
    new.verification.application = ApplicationId::parse("shop").unwrap();
    let key = f.keyring.number_key(&other);
    let StartOutcome::Created(v) = store.start(new, &key, POLICY, BUDGET, T0).await.unwrap() else {
        panic!("expected a new verification");
    };
    let got = store.get(&v.id, Owner::Any, T0).await.unwrap().unwrap();
    assert_eq!(got, v);
    assert_eq!(got.application.as_str(), "shop");
    assert!(
        store
            .get(&VerificationId::generate("0000"), Owner::Any, T0)
            .await
            .unwrap()
            .is_none()
    );
}

async fn the_right_code_approves_once_and_closes<S: VerificationStore>(store: &S) {
    let f = Fixture::new();
    let n = number();
    let (_, code) = f.open(store, &n, T0).await;
    let (result, v) = f.check(store, &n, code.expose(), at(1)).await.unwrap();
    assert_eq!(result, CheckResult::Approved);
    assert_eq!(v.status, Status::Approved);
    let (again, _) = f.check(store, &n, code.expose(), at(2)).await.unwrap();
    assert_eq!(again, CheckResult::NotPending(Status::Approved));
}

async fn wrong_codes_count_down_to_max_attempts_reached<S: VerificationStore>(store: &S) {
    let f = Fixture::new();
    let n = number();
    let (_, code) = f.open(store, &n, T0).await;
    let bad = wrong_code(&code);
    for left in (1..5).rev() {
        let (result, v) = f.check(store, &n, &bad, at(1)).await.unwrap();
        assert_eq!(result, CheckResult::Wrong);
        assert_eq!(v.attempts_remaining(), left);
    }
    let (result, v) = f.check(store, &n, &bad, at(1)).await.unwrap();
    assert_eq!(result, CheckResult::Exhausted);
    assert_eq!(v.status, Status::MaxAttemptsReached);
    let (result, v) = f.check(store, &n, code.expose(), at(1)).await.unwrap();
    assert_eq!(result, CheckResult::NotPending(Status::MaxAttemptsReached));
    assert_eq!(v.attempts_remaining(), 0);
}

async fn a_check_after_expiry_settles_as_expired_without_counting<S: VerificationStore>(store: &S) {
    let f = Fixture::new();
    let n = number();
    let (v, code) = f.open(store, &n, T0).await;
    assert_eq!(
        store
            .get(&v.id, Owner::Any, at(600))
            .await
            .unwrap()
            .unwrap()
            .status_at(at(600)),
        Status::Expired
    );
    let (result, after) = f.check(store, &n, code.expose(), at(600)).await.unwrap();
    assert_eq!(result, CheckResult::Expired);
    assert_eq!(after.status, Status::Expired);
    assert_eq!(after.attempts, 0);
    // Still readable long after.
    let later = at(600 + 23 * 3600);
    assert_eq!(
        store
            .get(&v.id, Owner::Any, later)
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Expired
    );
}

async fn starting_again_within_the_cooldown_is_refused_and_after_it_re_sends_the_sealed_code<
    S: VerificationStore,
>(
    store: &S,
) {
    let f = Fixture::new();
    let n = number();
    let (v, code) = f.open(store, &n, T0).await;
    let other = OtpCode::generate(CodeLength::default());
    let key = f.keyring.number_key(&n);
    match store
        .start(
            f.new_verification(&n, &other, at(10)),
            &key,
            POLICY,
            BUDGET,
            at(10),
        )
        .await
        .unwrap()
    {
        StartOutcome::Refused {
            refusal,
            verification,
        } => {
            assert_eq!(refusal, ResendRefusal::Cooldown(20_000));
            assert_eq!(verification.id, v.id);
        }
        other => panic!("{other:?}"),
    }
    let mut voice = f.new_verification(&n, &other, at(30));
    voice.verification.channel = Channel::Voice;
    match store
        .start(voice, &key, POLICY, BUDGET, at(30))
        .await
        .unwrap()
    {
        StartOutcome::Resend {
            verification,
            sealed,
        } => {
            assert_eq!(verification.id, v.id);
            assert_eq!(verification.sends, 2);
            assert_eq!(verification.channel, Channel::Voice);
            let opened = f.keyring.open(&sealed, v.id.as_str()).unwrap();
            assert_eq!(opened.expose(), code.expose());
        }
        other => panic!("{other:?}"),
    }
}

async fn sends_stop_at_the_limit<S: VerificationStore>(store: &S) {
    let f = Fixture::new();
    let n = number();
    f.open(store, &n, T0).await;
    let key = f.keyring.number_key(&n);
    let code = OtpCode::generate(CodeLength::default());
    for (i, secs) in [30, 60].into_iter().enumerate() {
        let out = store
            .start(
                f.new_verification(&n, &code, at(secs)),
                &key,
                POLICY,
                BUDGET,
                at(secs),
            )
            .await
            .unwrap();
        assert!(
            matches!(out, StartOutcome::Resend { .. }),
            "send {}: {out:?}",
            i + 2
        );
    }
    let out = store
        .start(
            f.new_verification(&n, &code, at(90)),
            &key,
            POLICY,
            BUDGET,
            at(90),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            out,
            StartOutcome::Refused {
                refusal: ResendRefusal::SendLimit,
                ..
            }
        ),
        "{out:?}"
    );
}

async fn a_new_verification_replaces_one_that_ended<S: VerificationStore>(store: &S) {
    let f = Fixture::new();
    let n = number();
    let (first, code) = f.open(store, &n, T0).await;
    f.check(store, &n, code.expose(), at(1)).await.unwrap();
    let (second, _) = f.open(store, &n, at(2)).await;
    assert_ne!(first.id, second.id);
    // An expired one is replaced too, and settles as expired.
    let (third, _) = f.open(store, &n, at(2 + 601)).await;
    assert_ne!(third.id, second.id);
    assert_eq!(
        store
            .get(&second.id, Owner::Any, at(2 + 601))
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Expired
    );
}

async fn cancel_and_fail_only_end_a_pending_verification<S: VerificationStore>(store: &S) {
    let f = Fixture::new();
    let (v, _) = f.open(store, &number(), T0).await;
    let (result, after) = store
        .finish(&v.id, Owner::Any, Finish::Cancel, at(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, Ok(()));
    assert_eq!(after.status, Status::Canceled);
    let (result, _) = store
        .finish(&v.id, Owner::Any, Finish::Fail, at(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, Err(Status::Canceled));
    let (w, _) = f.open(store, &number(), T0).await;
    let (result, after) = store
        .finish(&w.id, Owner::Any, Finish::Fail, at(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, Ok(()));
    assert_eq!(after.status, Status::Failed);
    assert!(
        store
            .finish(
                &VerificationId::generate("abcd"),
                Owner::Any,
                Finish::Cancel,
                T0
            )
            .await
            .unwrap()
            .is_none()
    );
}

fn delivery(id: &str, status: &str, at: Timestamp) -> Delivery {
    Delivery {
        channel: Channel::Sms,
        provider_id: id.to_owned(),
        status: status.into(),
        error_code: (status == "undelivered").then(|| "30".to_owned()),
        updated_at: at.as_millis(),
        call: None,
        sequence: None,
        created_at: None,
    }
}

async fn deliveries_are_recorded_and_never_move_backwards<S: VerificationStore>(store: &S) {
    let f = Fixture::new();
    let (v, _) = f.open(store, &number(), T0).await;
    let applied = |u: DeliveryUpdate| match u {
        DeliveryUpdate::Applied(v) => v,
        other => panic!("expected applied, got {other:?}"),
    };
    let after = applied(
        store
            .record_delivery(
                Recording::new(&v.id, delivery("m-1", "queued", at(1))),
                at(1),
            )
            .await
            .unwrap(),
    );
    assert_eq!(after.deliveries.len(), 1);
    assert_eq!(after.to, v.to, "the number, opened from the record");
    let after = applied(
        store
            .record_delivery(
                Recording {
                    to: Some(&v.to),
                    ..Recording::new(&v.id, delivery("m-1", "delivered", at(3)))
                },
                at(3),
            )
            .await
            .unwrap(),
    );
    assert_eq!(after.deliveries[0].status, "delivered");
    assert_eq!(after.to, v.to, "the number the caller gave");
    let stale = store
        .record_delivery(
            Recording {
                to: Some(&v.to),
                ..Recording::new(&v.id, delivery("m-1", "sent", at(4)))
            },
            at(4),
        )
        .await
        .unwrap();
    match stale {
        DeliveryUpdate::Stale(v) => assert_eq!(v.deliveries[0].status, "delivered"),
        other => panic!("{other:?}"),
    }
    let after = applied(
        store
            .record_delivery(
                Recording::new(&v.id, delivery("m-2", "undelivered", at(5))),
                at(5),
            )
            .await
            .unwrap(),
    );
    assert_eq!(after.deliveries.len(), 2);
    assert_eq!(after.deliveries[1].error_code.as_deref(), Some("30"));
    assert_eq!(
        store
            .record_delivery(
                Recording::new(
                    &VerificationId::generate("abcd"),
                    delivery("m-3", "sent", T0)
                ),
                T0
            )
            .await
            .unwrap(),
        DeliveryUpdate::NotFound
    );
}

async fn a_delivery_recorded_with_a_job_schedules_it_even_when_its_verification_is_gone<
    S: VerificationStore + JobStore,
>(
    store: &S,
) {
    let f = Fixture::new();
    let (v, _) = f.open(store, &number(), T0).await;
    let (job, gone_job) = ("fallback:a".to_owned(), "fallback:b".to_owned());
    let recorded = store
        .record_delivery(
            Recording {
                job: Some((&job, at(30))),
                ..Recording::new(&v.id, delivery("m-1", "queued", at(1)))
            },
            at(1),
        )
        .await
        .unwrap();
    match recorded {
        DeliveryUpdate::Applied(after) => assert_eq!(after.deliveries.len(), 1),
        other => panic!("expected applied, got {other:?}"),
    }
    let gone = VerificationId::generate("abcd");
    let recorded = store
        .record_delivery(
            Recording {
                job: Some((&gone_job, at(40))),
                ..Recording::new(&gone, delivery("m-2", "queued", at(1)))
            },
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(recorded, DeliveryUpdate::NotFound);
    // Each comes due at its own time, and not before.
    assert!(
        store
            .claim_jobs(at(29), 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.claim_jobs(at(30), 60_000, 10).await.unwrap(),
        vec![job]
    );
    assert_eq!(
        store.claim_jobs(at(40), 60_000, 10).await.unwrap(),
        vec![gone_job]
    );
}

async fn a_receipt_names_a_delivery_recorded_without_plivos_id<S: VerificationStore>(store: &S) {
    let f = Fixture::new();
    let (v, _) = f.open(store, &number(), T0).await;
    let record = |d: Delivery, t: Timestamp| store.record_delivery(Recording::new(&v.id, d), t);
    // Two sends whose outcome is unknown stay two deliveries.
    let (first, second) = (Delivery::local_id(), Delivery::local_id());
    let mut unknown = delivery(&first, "unknown", at(1));
    unknown.created_at = Some(at(1).as_millis());
    record(unknown, at(1)).await.unwrap();
    let DeliveryUpdate::Applied(after) = record(delivery(&second, "unknown", at(2)), at(2))
        .await
        .unwrap()
    else {
        panic!("a second unknown send is recorded");
    };
    assert_eq!(after.deliveries.len(), 2);
    // A voice report does not take over an SMS.
    let mut call = delivery("call-1", "completed", at(3));
    call.channel = Channel::Voice;
    let DeliveryUpdate::Applied(after) = record(call, at(3)).await.unwrap() else {
        panic!("applied");
    };
    assert_eq!(after.deliveries.len(), 3);
    // The first SMS receipt names the first unknown SMS, the next the second.
    let DeliveryUpdate::Applied(after) =
        record(delivery("m-1", "sent", at(4)), at(4)).await.unwrap()
    else {
        panic!("applied");
    };
    assert_eq!(after.deliveries.len(), 3);
    assert_eq!(after.deliveries[0].provider_id, "m-1");
    assert_eq!(after.deliveries[0].status, "sent");
    assert_eq!(after.deliveries[0].created_at, Some(at(1).as_millis()));
    let DeliveryUpdate::Applied(after) = record(delivery("m-2", "delivered", at(5)), at(5))
        .await
        .unwrap()
    else {
        panic!("applied");
    };
    assert_eq!(after.deliveries[1].provider_id, "m-2");
    // From then on receipts match by id as usual.
    let DeliveryUpdate::Applied(after) = record(delivery("m-1", "delivered", at(6)), at(6))
        .await
        .unwrap()
    else {
        panic!("applied");
    };
    assert_eq!(after.deliveries.len(), 3);
    assert_eq!(after.deliveries[0].status, "delivered");
}

async fn numbers_do_not_see_each_others_verifications<S: VerificationStore>(store: &S) {
    let f = Fixture::new();
    let (a, b) = (number(), number());
    let (_, code_a) = f.open(store, &a, T0).await;
    assert!(f.check(store, &b, code_a.expose(), at(1)).await.is_none());
    let (vb, _) = f.open(store, &b, T0).await;
    let (result, v) = f.check(store, &b, code_a.expose(), at(1)).await.unwrap();
    assert_eq!(v.id, vb.id);
    if code_a.expose() != wrong_code(&code_a) {
        assert!(matches!(result, CheckResult::Wrong | CheckResult::Approved));
    }
}

async fn fifty_concurrent_right_checks_approve_exactly_once<S: VerificationStore>(store: &S) {
    let f = Fixture::new();
    let n = number();
    let (_, code) = f.open(store, &n, T0).await;
    let checks = (0..50).map(|_| f.check(store, &n, code.expose(), at(1)));
    let results = futures::future::join_all(checks).await;
    let approved = results
        .iter()
        .filter(|r| matches!(r, Some((CheckResult::Approved, _))))
        .count();
    assert_eq!(approved, 1);
}

async fn a_check_by_id_reaches_the_verification<S: VerificationStore>(store: &S) {
    let f = Fixture::new();
    let (v, code) = f.open(store, &number(), T0).await;
    let digests = f.keyring.digests(&code);
    let (result, after) = store
        .check(CheckTarget::Id(&v.id), Owner::Any, &digests, WINDOWS, at(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, CheckResult::Approved);
    assert_eq!(after.id, v.id);
    assert!(
        store
            .check(
                CheckTarget::Id(&VerificationId::generate("abcd")),
                Owner::Any,
                &digests,
                WINDOWS,
                at(1)
            )
            .await
            .unwrap()
            .is_none()
    );
}

async fn every_wrong_code_counts_against_the_number_whatever_ends_the_verification<
    S: VerificationStore,
>(
    store: &S,
) {
    let f = Fixture::new();
    let n = number();
    let key = f.keyring.number_key(&n);
    let failures = |now| store.failures(&key, WINDOWS, now);
    assert_eq!(failures(T0).await.unwrap(), Failures::default());
    // Two wrong codes, then canceled.
    let (v, code) = f.open(store, &n, T0).await;
    for _ in 0..2 {
        f.check(store, &n, &wrong_code(&code), at(1)).await.unwrap();
    }
    store
        .finish(&v.id, Owner::Any, Finish::Cancel, at(2))
        .await
        .unwrap();
    // Two more by id, then left to expire.
    let (v, code) = f.open(store, &n, at(3)).await;
    let wrong = OtpCode::parse(&wrong_code(&code), CodeLength::default()).unwrap();
    for _ in 0..2 {
        store
            .check(
                CheckTarget::Id(&v.id),
                Owner::Any,
                &f.keyring.digests(&wrong),
                WINDOWS,
                at(4),
            )
            .await
            .unwrap();
    }
    store
        .finish(&v.id, Owner::Any, Finish::Expire, at(700))
        .await
        .unwrap();
    // A right code and a guess after the end count nothing.
    let (_, code) = f.open(store, &n, at(701)).await;
    f.check(store, &n, code.expose(), at(702)).await.unwrap();
    f.check(store, &n, &wrong_code(&code), at(703))
        .await
        .unwrap();
    assert_eq!(
        failures(at(704)).await.unwrap(),
        Failures { lockout: 4, day: 4 }
    );
    // Each window ends on its own.
    assert_eq!(
        failures(at(3600 * 3)).await.unwrap(),
        Failures { lockout: 0, day: 4 }
    );
    assert_eq!(failures(at(86_400 * 2)).await.unwrap(), Failures::default());
    // Another number has its own counts.
    let other = f.keyring.number_key(&number());
    assert_eq!(
        store.failures(&other, WINDOWS, at(704)).await.unwrap(),
        Failures::default()
    );
}

async fn a_start_refused_by_the_cooldown_or_the_send_limit_spends_none_of_the_budget<
    S: VerificationStore,
>(
    store: &S,
) {
    let f = Fixture::new();
    let n = number();
    let key = f.keyring.number_key(&n);
    let budget = SendBudget {
        max: 3,
        window_ms: 3_600_000,
    };
    let policy = SendPolicy {
        cooldown_ms: 30_000,
        max_sends: 2,
    };
    let code = OtpCode::generate(CodeLength::default());
    let start = |secs| {
        store.start(
            f.new_verification(&n, &code, at(secs)),
            &key,
            policy,
            budget,
            at(secs),
        )
    };
    assert!(matches!(start(0).await.unwrap(), StartOutcome::Created(_)));
    for secs in 1..20 {
        let out = start(secs).await.unwrap();
        assert!(
            matches!(
                out,
                StartOutcome::Refused {
                    refusal: ResendRefusal::Cooldown(_),
                    ..
                }
            ),
            "{out:?}"
        );
    }
    assert!(matches!(
        start(30).await.unwrap(),
        StartOutcome::Resend { .. }
    ));
    for secs in 60..70 {
        let out = start(secs).await.unwrap();
        assert!(
            matches!(
                out,
                StartOutcome::Refused {
                    refusal: ResendRefusal::SendLimit,
                    ..
                }
            ),
            "{out:?}"
        );
    }
    // Two sends so far: a third verification (after this one ends) is the
    // budget's last, and the next start is refused until the window ends.
    let (v, _) = match start(70).await.unwrap() {
        StartOutcome::Refused { verification, .. } => (verification, ()),
        other => panic!("{other:?}"),
    };
    store
        .finish(&v.id, Owner::Any, Finish::Cancel, at(71))
        .await
        .unwrap();
    assert!(matches!(start(72).await.unwrap(), StartOutcome::Created(_)));
    match start(200).await.unwrap() {
        StartOutcome::NumberLimited { retry_after_ms } => {
            assert!(retry_after_ms > 0 && retry_after_ms <= budget.window_ms);
        }
        other => panic!("{other:?}"),
    }
}

fn secret(byte: u8) -> SecretSlice<u8> {
    SecretSlice::from(vec![byte; 32])
}

#[tokio::test]
async fn a_pending_verification_written_in_the_old_layout_reads_checks_and_re_sends() {
    let prefix = crate::common::unique_prefix();
    let store = redis_store_with(&prefix, Keyring::new(&[secret(7)])).await;
    let f = Fixture::with(Keyring::new(&[secret(7)]));
    let n = number();
    let key = f.keyring.number_key(&n);
    let id = VerificationId::generate(&key.tag);
    let code = OtpCode::generate(CodeLength::default());
    // The layout of the previous version: `to` in plain E.164, no number hash.
    let mut conn = crate::common::redis_conn().await;
    let record = format!("{prefix}:{{{}}}:v:{}", key.tag, id.as_str());
    let (created, expires) = (T0.as_millis().to_string(), at(600).as_millis().to_string());
    let _: () = ::redis::cmd("HSET")
        .arg(&record)
        .arg(&[
            ("to", n.as_e164()),
            ("channel", "sms"),
            ("locale", "en-US"),
            ("status", "pending"),
            ("created_at", &created),
            ("expires_at", &expires),
            ("attempts", "0"),
            ("max_attempts", "5"),
            ("sends", "1"),
            ("last_sent_at", &created),
            ("deliveries", "[]"),
            ("fallback", "0"),
            ("digest", &f.keyring.primary_digest(&code)),
            ("sealed", &f.keyring.seal(&code, id.as_str())),
        ])
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = ::redis::cmd("SET")
        .arg(format!("{prefix}:{{{}}}:num:{}", key.tag, key.hash))
        .arg(id.as_str())
        .arg("PX")
        .arg(86_400_000)
        .query_async(&mut conn)
        .await
        .unwrap();

    let read = store.get(&id, Owner::Any, at(1)).await.unwrap().unwrap();
    assert_eq!(read.to, n);
    assert_eq!(read.status, Status::Pending);
    let (result, v) = f
        .check(&store, &n, &wrong_code(&code), at(2))
        .await
        .unwrap();
    assert_eq!((result, v.attempts), (CheckResult::Wrong, 1));
    assert_eq!(
        store.failures(&key, WINDOWS, at(2)).await.unwrap(),
        Failures { lockout: 1, day: 1 },
        "a wrong code on an old record counts against its number"
    );
    match store
        .start(
            f.new_verification(&n, &code, at(40)),
            &key,
            POLICY,
            BUDGET,
            at(40),
        )
        .await
        .unwrap()
    {
        StartOutcome::Resend {
            verification,
            sealed,
        } => {
            assert_eq!(verification.id, id);
            assert_eq!(
                f.keyring.open(&sealed, id.as_str()).unwrap().expose(),
                code.expose()
            );
        }
        other => panic!("{other:?}"),
    }
    let (result, v) = f.check(&store, &n, code.expose(), at(41)).await.unwrap();
    assert_eq!((result, v.to), (CheckResult::Approved, n));
}

#[tokio::test]
async fn a_number_sealed_under_an_older_secret_reads_after_a_rotation_but_not_once_it_is_dropped() {
    let prefix = crate::common::unique_prefix();
    let before = redis_store_with(&prefix, Keyring::new(&[secret(1)])).await;
    let f = Fixture::with(Keyring::new(&[secret(1)]));
    let n = number();
    let (v, code) = f.open(&before, &n, T0).await;

    let rotated = redis_store_with(&prefix, Keyring::new(&[secret(2), secret(1)])).await;
    assert_eq!(
        rotated
            .get(&v.id, Owner::Any, at(1))
            .await
            .unwrap()
            .unwrap()
            .to,
        n
    );
    let rotated_ring = Keyring::new(&[secret(2), secret(1)]);
    let (result, after) = rotated
        .check(
            CheckTarget::Id(&v.id),
            Owner::Any,
            &rotated_ring.digests(&code),
            WINDOWS,
            at(2),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((result, after.to), (CheckResult::Approved, n));

    let dropped = redis_store_with(&prefix, Keyring::new(&[secret(2)])).await;
    assert!(
        dropped
            .get(&v.id, Owner::Any, at(3))
            .await
            .unwrap()
            .is_none(),
        "sealed by a secret no longer configured: no longer readable"
    );
}

#[test]
fn the_memory_store_is_cheap_to_clone_and_shares_state() {
    let a = MemoryStore::new();
    let _b = a.clone();
}

const FACTOR_LIMITS: FactorLimits = FactorLimits {
    max_attempts: 3,
    lock_ms: 60_000,
    day_ms: 86_400_000,
    max_per_day: 7,
};

/// A new factor of `app` for `identity`, kept in `store`.
async fn new_factor<S: FactorStore>(
    store: &S,
    keyring: &Keyring,
    app: &ApplicationId,
    identity: &str,
    status: FactorStatus,
) -> Factor {
    let (factor, created) = enrol(store, keyring, app, identity, status, T0, 100).await;
    assert_eq!(created, FactorCreated::Created);
    factor
}

/// A new factor of `app` for `identity` made `at`, offered to `store` with
/// `max` live factors an identity may have; what the store did with it.
async fn enrol<S: FactorStore>(
    store: &S,
    keyring: &Keyring,
    app: &ApplicationId,
    identity: &str,
    status: FactorStatus,
    at: Timestamp,
    max: u32,
) -> (Factor, FactorCreated) {
    let key = keyring.identity_key(app, identity);
    let factor = Factor {
        id: FactorId::generate(&key.tag),
        application: app.clone(),
        identity: Identity::parse(identity).unwrap(),
        friendly_name: Some(FriendlyName::parse("Alice's phone").unwrap()),
        status,
        digits: TotpDigits::default(),
        created_at: at,
    };
    let secret = TotpSecret::generate();
    let stored = StoredFactor {
        sealed_secret: keyring.seal_totp_secret(&secret, factor.id.as_str()),
        factor: factor.clone(),
        last_step: None,
    };
    let created = store.create_factor(stored, &key.hash, max).await.unwrap();
    (factor, created)
}

async fn an_identity_has_at_most_its_factors_until_one_is_deleted_or_abandoned<S: FactorStore>(
    store: &S,
) {
    let keyring = store_keyring();
    let (shop, bank) = (app_id("shop"), app_id("bank"));
    let offer = |app: &ApplicationId, identity: &'static str, status, at| {
        let (keyring, app) = (&keyring, app.clone());
        async move { enrol(store, keyring, &app, identity, status, at, 2).await }
    };
    let (a, created) = offer(&shop, "full", FactorStatus::Unverified, T0).await;
    assert_eq!(created, FactorCreated::Created);
    let (b, created) = offer(&shop, "full", FactorStatus::Verified, T0).await;
    assert_eq!(created, FactorCreated::Created);
    let (refused, created) = offer(&shop, "full", FactorStatus::Unverified, T0).await;
    assert_eq!(created, FactorCreated::IdentityFull);
    assert!(
        store
            .factor(&refused.id, Owner::Any)
            .await
            .unwrap()
            .is_none(),
        "a refused enrolment keeps nothing"
    );
    // Another identity, and the same identity in another application, have
    // places of their own.
    for (app, identity) in [(&shop, "other"), (&bank, "full")] {
        let (_, created) = offer(app, identity, FactorStatus::Unverified, T0).await;
        assert_eq!(created, FactorCreated::Created, "{app} {identity}");
    }
    // A deletion frees its place.
    assert!(
        store
            .delete_factor(&b.id, Owner::App(&shop), T0)
            .await
            .unwrap()
            .is_some()
    );
    let (_, created) = offer(&shop, "full", FactorStatus::Unverified, T0).await;
    assert_eq!(created, FactorCreated::Created);
    assert_eq!(
        offer(&shop, "full", FactorStatus::Unverified, T0).await.1,
        FactorCreated::IdentityFull
    );
    // Verifying `a` keeps its place for good; the last one, never verified,
    // is abandoned after the hour and frees its own.
    assert_eq!(
        attempt(store, &a, FactorStage::Verify, FactorAttempt::Step(1), T0).await,
        AttemptOutcome::Approved
    );
    let later = T0.plus(UNVERIFIED_FACTOR_TTL);
    let (_, created) = offer(&shop, "full", FactorStatus::Unverified, later).await;
    assert_eq!(created, FactorCreated::Created, "c was abandoned");
    assert_eq!(
        offer(&shop, "full", FactorStatus::Unverified, later)
            .await
            .1,
        FactorCreated::IdentityFull,
        "a, verified, still counts"
    );
}

fn app_id(id: &str) -> ApplicationId {
    ApplicationId::parse(id).unwrap()
}

async fn attempt<S: FactorStore>(
    store: &S,
    f: &Factor,
    stage: FactorStage,
    attempt: FactorAttempt,
    now: Timestamp,
) -> AttemptOutcome {
    store
        .attempt_factor(
            &f.id,
            Owner::App(&f.application),
            stage,
            attempt,
            FACTOR_LIMITS,
            now,
        )
        .await
        .unwrap()
}

async fn a_factor_reads_back_only_for_its_application_and_is_deleted_once<S: FactorStore>(
    store: &S,
) {
    let keyring = store_keyring();
    let shop = app_id("shop");
    let f = new_factor(store, &keyring, &shop, "user-1", FactorStatus::Unverified).await;
    let read = store
        .factor(&f.id, Owner::App(&shop))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.factor, f);
    assert_eq!(read.last_step, None);
    let secret = keyring
        .open_totp_secret(&read.sealed_secret, f.id.as_str())
        .unwrap();
    assert_eq!(secret.expose().len(), 20);
    assert!(store.factor(&f.id, Owner::Any).await.unwrap().is_some());
    let bank = app_id("bank");
    assert!(
        store
            .factor(&f.id, Owner::App(&bank))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        attempt_as(store, &f, &bank, FactorAttempt::Step(1)).await,
        AttemptOutcome::NotFound
    );
    assert!(
        store
            .delete_factor(&f.id, Owner::App(&bank), T0)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .delete_factor(&f.id, Owner::App(&shop), T0)
            .await
            .unwrap(),
        Some(f.clone())
    );
    assert!(
        store
            .delete_factor(&f.id, Owner::App(&shop), T0)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.factor(&f.id, Owner::Any).await.unwrap().is_none());
}

async fn attempt_as<S: FactorStore>(
    store: &S,
    f: &Factor,
    app: &ApplicationId,
    attempt: FactorAttempt,
) -> AttemptOutcome {
    store
        .attempt_factor(
            &f.id,
            Owner::App(app),
            FactorStage::Verify,
            attempt,
            FACTOR_LIMITS,
            T0,
        )
        .await
        .unwrap()
}

async fn fifty_concurrent_codes_of_one_step_approve_exactly_once<S: FactorStore>(store: &S) {
    let keyring = store_keyring();
    let f = new_factor(
        store,
        &keyring,
        &app_id("shop"),
        "u",
        FactorStatus::Verified,
    )
    .await;
    let attempts =
        (0..50).map(|_| attempt(store, &f, FactorStage::Check, FactorAttempt::Step(100), T0));
    let results = futures::future::join_all(attempts).await;
    let approved = results
        .iter()
        .filter(|r| **r == AttemptOutcome::Approved)
        .count();
    assert_eq!(approved, 1, "{results:?}");
    let read = store.factor(&f.id, Owner::Any).await.unwrap().unwrap();
    assert_eq!(read.last_step, Some(100));
    // The same step and earlier ones never again; a later one once.
    for step in [100, 99] {
        let r = attempt(
            store,
            &f,
            FactorStage::Check,
            FactorAttempt::Step(step),
            at(1),
        )
        .await;
        assert!(
            matches!(
                r,
                AttemptOutcome::Wrong { .. } | AttemptOutcome::Locked { .. }
            ),
            "{r:?}"
        );
    }
}

async fn a_factor_locks_after_max_attempts_wrong_in_a_row_and_its_identity_stops_at_the_ceiling<
    S: FactorStore,
>(
    store: &S,
) {
    let keyring = store_keyring();
    let shop = app_id("shop");
    let f = new_factor(store, &keyring, &shop, "brute", FactorStatus::Verified).await;
    let g = new_factor(store, &keyring, &shop, "brute", FactorStatus::Verified).await;
    let other = new_factor(store, &keyring, &shop, "other", FactorStatus::Verified).await;
    assert_eq!(
        wrong(store, &f, T0).await,
        AttemptOutcome::Wrong {
            attempts_remaining: 2
        }
    );
    assert_eq!(
        wrong(store, &f, T0).await,
        AttemptOutcome::Wrong {
            attempts_remaining: 1
        }
    );
    assert_eq!(
        wrong(store, &f, T0).await,
        AttemptOutcome::Locked {
            retry_after_ms: 60_000
        }
    );
    // Locked: a right step is refused and not recorded.
    assert_eq!(
        attempt(
            store,
            &f,
            FactorStage::Check,
            FactorAttempt::Step(5),
            at(10)
        )
        .await,
        AttemptOutcome::Locked {
            retry_after_ms: 50_000
        }
    );
    assert_eq!(
        attempt(
            store,
            &f,
            FactorStage::Check,
            FactorAttempt::Step(5),
            at(60)
        )
        .await,
        AttemptOutcome::Approved
    );
    // Three wrong on f, then four on g, reach the identity's seven a day.
    for remaining in [2, 1] {
        assert_eq!(
            wrong(store, &g, at(61)).await,
            AttemptOutcome::Wrong {
                attempts_remaining: remaining
            }
        );
    }
    assert!(matches!(
        wrong(store, &g, at(61)).await,
        AttemptOutcome::Locked { .. }
    ));
    assert_eq!(
        wrong(store, &g, at(200)).await,
        AttemptOutcome::Wrong {
            attempts_remaining: 2
        }
    );
    let r = attempt(
        store,
        &f,
        FactorStage::Check,
        FactorAttempt::Step(6),
        at(201),
    )
    .await;
    let AttemptOutcome::DailyCeiling { retry_after_ms } = r else {
        panic!("{r:?}");
    };
    let day_end = (T0.as_millis() / 86_400_000 + 1) * 86_400_000;
    assert_eq!(
        retry_after_ms,
        at(201).millis_until(Timestamp::from_millis(day_end))
    );
    // Another identity is not held back, and the next day the first is not.
    assert_eq!(
        attempt(
            store,
            &other,
            FactorStage::Check,
            FactorAttempt::Step(6),
            at(201)
        )
        .await,
        AttemptOutcome::Approved
    );
    assert_eq!(
        attempt(
            store,
            &f,
            FactorStage::Check,
            FactorAttempt::Step(7),
            Timestamp::from_millis(day_end)
        )
        .await,
        AttemptOutcome::Approved
    );
}

async fn wrong<S: FactorStore>(store: &S, f: &Factor, now: Timestamp) -> AttemptOutcome {
    attempt(store, f, FactorStage::Check, FactorAttempt::Wrong, now).await
}

async fn a_factor_only_takes_codes_at_the_stage_its_status_allows<S: FactorStore>(store: &S) {
    let keyring = store_keyring();
    let f = new_factor(
        store,
        &keyring,
        &app_id("shop"),
        "u",
        FactorStatus::Unverified,
    )
    .await;
    assert_eq!(
        attempt(store, &f, FactorStage::Check, FactorAttempt::Step(1), T0).await,
        AttemptOutcome::WrongStage(FactorStatus::Unverified)
    );
    assert_eq!(
        attempt(store, &f, FactorStage::Verify, FactorAttempt::Step(1), T0).await,
        AttemptOutcome::Approved
    );
    let read = store.factor(&f.id, Owner::Any).await.unwrap().unwrap();
    assert_eq!(read.factor.status, FactorStatus::Verified);
    assert_eq!(
        attempt(store, &f, FactorStage::Verify, FactorAttempt::Step(2), T0).await,
        AttemptOutcome::WrongStage(FactorStatus::Verified)
    );
    assert_eq!(
        attempt(store, &f, FactorStage::Check, FactorAttempt::Step(2), T0).await,
        AttemptOutcome::Approved
    );
}

#[tokio::test]
async fn a_factor_in_redis_expires_only_while_unverified_and_shows_neither_its_secret_nor_its_identity()
 {
    let prefix = crate::common::unique_prefix();
    let ring = || Keyring::new(&[SecretSlice::from(vec![7u8; 32])]);
    let store = redis_store_with(&prefix, ring()).await;
    let f = new_factor(
        &store,
        &ring(),
        &app_id("shop"),
        "identity-in-clear?",
        FactorStatus::Unverified,
    )
    .await;
    let mut conn = crate::common::redis_conn().await;
    let key = format!("{prefix}:{{{}}}:f:{}", f.id.tag(), f.id.as_str());
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= 3_600_000,
        "an unverified factor is gone within the hour: {ttl}"
    );
    let verified = new_factor(
        &store,
        &ring(),
        &app_id("shop"),
        "identity-verified",
        FactorStatus::Verified,
    )
    .await;
    let verified_ttl: i64 = ::redis::cmd("PTTL")
        .arg(format!(
            "{prefix}:{{{}}}:f:{}",
            verified.id.tag(),
            verified.id.as_str()
        ))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(verified_ttl, -1, "a verified factor lasts until deleted");
    // Each identity's index of its live factors lasts as its entries do.
    let index_ttl = |factor: &Factor, identity: &str| {
        let key = format!(
            "{prefix}:{{{}}}:fi:{}",
            factor.id.tag(),
            ring().identity_key(&app_id("shop"), identity).hash
        );
        let mut conn = conn.clone();
        async move {
            ::redis::cmd("PTTL")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };
    let ttl = index_ttl(&f, "identity-in-clear?").await;
    assert!(
        ttl > 0 && ttl <= 3_600_000,
        "an index of one enrolment lasts the hour: {ttl}"
    );
    assert_eq!(index_ttl(&verified, "identity-verified").await, -1);
    let dump: Vec<String> = ::redis::cmd("HVALS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let dump = dump.join(" ");
    assert!(!dump.contains("identity-in-clear"), "{dump}");
    assert!(!dump.contains("Alice"), "{dump}");
    // A store with the secret rotated in front still reads it; one without
    // it reads nothing.
    let rotated = redis_store_with(
        &prefix,
        Keyring::new(&[
            SecretSlice::from(vec![8u8; 32]),
            SecretSlice::from(vec![7u8; 32]),
        ]),
    )
    .await;
    assert_eq!(
        rotated
            .factor(&f.id, Owner::Any)
            .await
            .unwrap()
            .unwrap()
            .factor,
        f
    );
    let dropped =
        redis_store_with(&prefix, Keyring::new(&[SecretSlice::from(vec![8u8; 32])])).await;
    assert!(dropped.factor(&f.id, Owner::Any).await.unwrap().is_none());
}

fn whatsapp_delivery(id: &str, status: &str, at: Timestamp) -> Delivery {
    Delivery {
        channel: Channel::WhatsApp,
        ..delivery(id, status, at)
    }
}

/// A WhatsApp verification whose message `w-1` is recorded with `status`.
async fn whatsapp_sent<S: VerificationStore>(f: &Fixture, store: &S, status: &str) -> Verification {
    let (v, _) = f.open_on(store, &number(), Channel::WhatsApp, T0).await;
    store
        .record_delivery(
            Recording::new(&v.id, whatsapp_delivery("w-1", status, at(1))),
            at(1),
        )
        .await
        .unwrap();
    v
}

/// The default fallback order, `sms,voice`.
fn chain() -> FallbackChannels {
    FallbackChannels::default()
}

/// What a claim gave: the channel and the verification after it, with the
/// sealed code opened; or why it was skipped.
async fn claim<S: VerificationStore>(
    f: &Fixture,
    store: &S,
    v: &Verification,
    trigger: FallbackTrigger,
    max_sends: u32,
    now: Timestamp,
) -> Result<(Channel, Verification, String), FallbackSkip> {
    match store
        .claim_fallback(&v.id, chain(), trigger, max_sends, now)
        .await
        .unwrap()
    {
        FallbackClaim::Claimed {
            verification,
            sealed,
            channel,
        } => {
            let code = f.keyring.open(&sealed, v.id.as_str()).unwrap();
            Ok((channel, *verification, code.expose().to_owned()))
        }
        FallbackClaim::Skipped(skip) => Err(skip),
        FallbackClaim::NotFound => panic!("the verification is there"),
    }
}

async fn a_whatsapp_verification_falls_back_to_sms_then_to_voice_each_once_with_the_same_code<
    S: VerificationStore,
>(
    store: &S,
) {
    let f = Fixture::new();
    let (v, code) = f.open_on(store, &number(), Channel::WhatsApp, T0).await;
    let failed = FallbackTrigger::Failed;
    let (channel, after, sealed) = claim(&f, store, &v, failed(Channel::WhatsApp), 5, at(2))
        .await
        .unwrap();
    assert_eq!((channel, sealed.as_str()), (Channel::Sms, code.expose()));
    assert_eq!(
        (after.fallbacks.clone(), after.sends),
        (vec![Channel::Sms], 2)
    );
    assert_eq!(after.last_sent_at, at(2));
    assert_eq!(
        claim(&f, store, &v, failed(Channel::WhatsApp), 5, at(3))
            .await
            .unwrap_err(),
        FallbackSkip::AlreadyUsed,
        "a second failure report of the WhatsApp message sends nothing more"
    );
    let (channel, after, sealed) = claim(&f, store, &v, FallbackTrigger::NoReceipt, 5, at(50))
        .await
        .unwrap();
    assert_eq!((channel, sealed.as_str()), (Channel::Voice, code.expose()));
    assert_eq!(after.sends, 3);
    let read = store.get(&v.id, Owner::Any, at(51)).await.unwrap().unwrap();
    assert_eq!(read.fallbacks, vec![Channel::Sms, Channel::Voice]);
    for trigger in [FallbackTrigger::NoReceipt, failed(Channel::Sms)] {
        assert_eq!(
            claim(&f, store, &v, trigger, 5, at(60)).await.unwrap_err(),
            FallbackSkip::AlreadyUsed
        );
    }
}

async fn the_fallback_stops_once_a_message_is_read_or_the_sends_are_used_up<
    S: VerificationStore,
>(
    store: &S,
) {
    let f = Fixture::new();
    let v = whatsapp_sent(&f, store, "read").await;
    assert_eq!(
        claim(&f, store, &v, FallbackTrigger::NoReceipt, 5, at(45))
            .await
            .unwrap_err(),
        FallbackSkip::Delivered
    );

    let (w, _) = f.open_on(store, &number(), Channel::WhatsApp, T0).await;
    let (channel, ..) = claim(&f, store, &w, FallbackTrigger::NoReceipt, 2, at(45))
        .await
        .unwrap();
    assert_eq!(channel, Channel::Sms);
    assert_eq!(
        claim(&f, store, &w, FallbackTrigger::NoReceipt, 2, at(90))
            .await
            .unwrap_err(),
        FallbackSkip::SendLimit,
        "MAX_SENDS bounds the chain"
    );
    let after = store.get(&w.id, Owner::Any, at(91)).await.unwrap().unwrap();
    assert_eq!((after.sends, after.fallbacks), (2, vec![Channel::Sms]));
}

async fn an_sms_verification_falls_back_to_voice_alone_and_never_to_sms<S: VerificationStore>(
    store: &S,
) {
    let f = Fixture::new();
    let (v, _) = f.open(store, &number(), T0).await;
    let (channel, ..) = claim(
        &f,
        store,
        &v,
        FallbackTrigger::Failed(Channel::Sms),
        5,
        at(2),
    )
    .await
    .unwrap();
    assert_eq!(channel, Channel::Voice);
    assert_eq!(
        claim(&f, store, &v, FallbackTrigger::NoReceipt, 5, at(50))
            .await
            .unwrap_err(),
        FallbackSkip::AlreadyUsed
    );
    let (w, _) = f.open_on(store, &number(), Channel::Voice, T0).await;
    assert_eq!(
        claim(&f, store, &w, FallbackTrigger::NoReceipt, 5, at(50))
            .await
            .unwrap_err(),
        FallbackSkip::AlreadyUsed,
        "a call falls back to nothing"
    );
}

async fn a_receipt_without_its_type_keeps_the_channel_of_the_message_it_names<
    S: VerificationStore,
>(
    store: &S,
) {
    let f = Fixture::new();
    let v = whatsapp_sent(&f, store, "queued").await;
    // A receipt read without `Type` comes in as an SMS report.
    match store
        .record_delivery(
            Recording::new(&v.id, delivery("w-1", "delivered", at(2))),
            at(2),
        )
        .await
        .unwrap()
    {
        DeliveryUpdate::Applied(after) => {
            assert_eq!(after.deliveries.len(), 1);
            assert_eq!(after.deliveries[0].channel, Channel::WhatsApp);
            assert_eq!(after.deliveries[0].status, "delivered");
        }
        other => panic!("{other:?}"),
    }
}

async fn fifty_concurrent_fallback_claims_take_the_step_once<S: VerificationStore>(store: &S) {
    let f = Fixture::new();
    let (v, _) = f.open_on(store, &number(), Channel::WhatsApp, T0).await;
    let claims = (0..50).map(|_| {
        store.claim_fallback(
            &v.id,
            chain(),
            FallbackTrigger::Failed(Channel::WhatsApp),
            5,
            at(2),
        )
    });
    let claimed = futures::future::join_all(claims)
        .await
        .into_iter()
        .filter(|c| matches!(c, Ok(FallbackClaim::Claimed { .. })))
        .count();
    assert_eq!(claimed, 1);
    let after = store.get(&v.id, Owner::Any, at(3)).await.unwrap().unwrap();
    assert_eq!((after.sends, after.fallbacks), (2, vec![Channel::Sms]));
}

#[tokio::test]
async fn a_record_whose_voice_fallback_an_older_version_claimed_falls_back_no_more() {
    let prefix = crate::common::unique_prefix();
    let store = redis_store_with(&prefix, store_keyring()).await;
    let f = Fixture::with(store_keyring());
    let (v, _) = f.open(&store, &number(), T0).await;
    // The version before wrote `fallback` 1 once it had placed the call.
    let mut conn = crate::common::redis_conn().await;
    let key = f.keyring.number_key(&v.to);
    let record = format!("{prefix}:{{{}}}:v:{}", key.tag, v.id.as_str());
    let _: () = ::redis::cmd("HSET")
        .arg(&record)
        .arg("fallback")
        .arg("1")
        .query_async(&mut conn)
        .await
        .unwrap();
    let read = store.get(&v.id, Owner::Any, at(1)).await.unwrap().unwrap();
    assert_eq!(read.fallbacks, vec![Channel::Voice]);
    for trigger in [
        FallbackTrigger::NoReceipt,
        FallbackTrigger::Failed(Channel::Sms),
    ] {
        assert_eq!(
            claim(&f, &store, &v, trigger, 5, at(50)).await.unwrap_err(),
            FallbackSkip::AlreadyUsed
        );
    }
}

const HOUR_MS: u64 = 3_600_000;

fn hits<'a>(limits: &[(&'a str, u64)]) -> Vec<Hit<'a>> {
    limits
        .iter()
        .map(|&(name, max)| Hit {
            name,
            window_ms: HOUR_MS,
            max,
        })
        .collect()
}

async fn hits_in_order_count_each_counter_and_stop_after_the_first_over_its_limit<
    S: CounterStore,
>(
    store: &S,
) {
    let order = hits(&[("ip:a", 2), ("key:a", 1), ("global:a", 5)]);
    assert_eq!(store.hit_in_order(&order, at(0)).await.unwrap(), [1, 1, 1]);
    // The second passes the key's limit: counted, and the global is not.
    assert_eq!(store.hit_in_order(&order, at(1)).await.unwrap(), [2, 2]);
    // The third passes the address's: nothing after it is counted.
    assert_eq!(store.hit_in_order(&order, at(2)).await.unwrap(), [3]);
    assert_eq!(store.count("ip:a", HOUR_MS, at(3)).await.unwrap(), 3);
    assert_eq!(store.count("key:a", HOUR_MS, at(3)).await.unwrap(), 2);
    assert_eq!(store.count("global:a", HOUR_MS, at(3)).await.unwrap(), 1);
    // The next window starts every counter afresh.
    let next = T0.plus(Duration::from_millis(HOUR_MS));
    assert_eq!(store.hit_in_order(&order, next).await.unwrap(), [1, 1, 1]);
    assert!(store.hit_in_order(&[], at(4)).await.unwrap().is_empty());
}

async fn hits_in_order_count_as_adding_one_to_each_would<S: CounterStore>(store: &S) {
    store.add("country:b", HOUR_MS, 7, at(0)).await.unwrap();
    let order = hits(&[("api:b", 100), ("country:b", 100)]);
    assert_eq!(store.hit_in_order(&order, at(1)).await.unwrap(), [1, 8]);
    assert_eq!(store.add("api:b", HOUR_MS, 1, at(2)).await.unwrap(), 2);
    assert_eq!(store.add("country:b", HOUR_MS, 0, at(2)).await.unwrap(), 8);
}

/// A gate for `key` that locks at `lock_at` wrong codes in either window.
fn gate<'a>(
    key: &'a NumberKey,
    lock_at: u64,
    flag: Option<&'a str>,
    hits: &'a [Hit<'a>],
) -> Gate<'a> {
    Gate {
        number: key,
        windows: WINDOWS,
        lock_at: Failures {
            lockout: lock_at,
            day: lock_at,
        },
        flag,
        hits,
    }
}

async fn a_gate_reads_the_numbers_wrong_codes_and_counts_its_hits_only_when_nothing_refuses<
    S: AdmissionStore,
>(
    store: &S,
) {
    let f = Fixture::new();
    let n = number();
    let key = f.keyring.number_key(&n);
    let order = hits(&[("gate-ip:a", 1), ("gate-global:a", 5)]);
    let (two, three) = (gate(&key, 2, None, &order), gate(&key, 3, None, &order));
    let first = store.admit(&two, at(0)).await.unwrap();
    assert_eq!(first.failures, Failures::default());
    assert!(!first.blocked);
    assert_eq!(first.counts, [1, 1]);
    // The second passes the address's limit: counted, and nothing after it.
    assert_eq!(store.admit(&two, at(1)).await.unwrap().counts, [2]);
    // Two wrong codes lock the number: nothing is counted.
    let (_, code) = f.open(store, &n, at(2)).await;
    for _ in 0..2 {
        f.check(store, &n, &wrong_code(&code), at(3)).await.unwrap();
    }
    let locked = store.admit(&two, at(4)).await.unwrap();
    assert_eq!(locked.failures, Failures { lockout: 2, day: 2 });
    assert!(locked.counts.is_empty());
    assert!(two.locks(locked.failures));
    // A higher bar lets the same number through, and the counters go on.
    let open = store.admit(&three, at(5)).await.unwrap();
    assert_eq!(open.failures, Failures { lockout: 2, day: 2 });
    assert_eq!(open.counts, [3]);
    assert_eq!(
        store.count("gate-global:a", HOUR_MS, at(6)).await.unwrap(),
        1
    );
    // Another number is not locked by this one's wrong codes.
    let other = f.keyring.number_key(&number());
    let theirs = store
        .admit(&gate(&other, 2, None, &[]), at(6))
        .await
        .unwrap();
    assert_eq!(theirs, Admission::default());
}

async fn a_paused_destination_refuses_before_any_hit_is_counted<S: AdmissionStore>(store: &S) {
    let f = Fixture::new();
    let key = f.keyring.number_key(&number());
    let order = hits(&[("pause-ip:a", 10)]);
    let pause = "pumping-block:+1";
    let paused_gate = gate(&key, 5, Some(pause), &order);
    assert_eq!(store.admit(&paused_gate, at(0)).await.unwrap().counts, [1]);
    store.raise_flag(pause, 60_000).await.unwrap();
    let paused = store.admit(&paused_gate, at(1)).await.unwrap();
    assert!(paused.blocked);
    assert!(paused.counts.is_empty());
    assert_eq!(store.count("pause-ip:a", HOUR_MS, at(2)).await.unwrap(), 1);
    // Without the flag in the gate (a safe number), the pause does not apply.
    let safe = store
        .admit(&gate(&key, 5, None, &order), at(2))
        .await
        .unwrap();
    assert!(!safe.blocked);
    assert_eq!(safe.counts, [2]);
}

async fn adding_and_reading_the_previous_window_counts_each_counter_once<S: CounterStore>(
    store: &S,
) {
    let hour = Duration::from_millis(HOUR_MS);
    store.add("weigh-a", HOUR_MS, 4, T0).await.unwrap();
    store.add("weigh-b", HOUR_MS, 9, T0).await.unwrap();
    let next = T0.plus(hour);
    let read = store
        .add_and_read_previous(&[("weigh-a", 1), ("weigh-b", 0)], HOUR_MS, next)
        .await
        .unwrap();
    assert_eq!(read, [(1, 4), (0, 9)]);
    // The previous windows were only read; this one's adds were counted once.
    let again = store
        .add_and_read_previous(&[("weigh-a", 2), ("weigh-b", 1)], HOUR_MS, next)
        .await
        .unwrap();
    assert_eq!(again, [(3, 4), (1, 9)]);
    assert_eq!(store.count("weigh-a", HOUR_MS, T0).await.unwrap(), 4);
    // A counter never counted reads as none in both windows.
    let fresh = store
        .add_and_read_previous(&[("weigh-c", 0)], HOUR_MS, next.plus(hour))
        .await
        .unwrap();
    assert_eq!(fresh, [(0, 0)]);
    assert!(
        store
            .add_and_read_previous(&[], HOUR_MS, next)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_gated_start_refused_by_its_gate_opens_nothing_and_spends_none_of_the_budget<
    S: AdmissionStore,
>(
    store: &S,
) {
    let f = Fixture::new();
    let n = number();
    let key = f.keyring.number_key(&n);
    let tight = SendBudget {
        max: 1,
        window_ms: HOUR_MS,
    };
    let opening = |now| Opening {
        new: f.new_verification(&n, &OtpCode::generate(CodeLength::default()), now),
        key: &key,
        policy: POLICY,
        budget: tight,
    };
    let feed = Feed {
        counters: &[("gated-started", 1)],
        window_ms: HOUR_MS,
    };
    let order = hits(&[("gated-ip:a", 0)]);
    // The address's limit is none: the gate refuses, counting that hit only.
    match store
        .gated_start(&gate(&key, 5, None, &order), opening(at(0)), feed, at(0))
        .await
        .unwrap()
    {
        Gated::Refused(admission) => assert_eq!(admission.counts, [1]),
        other => panic!("the gate let it through: {other:?}"),
    }
    // A locked number: refused before any hit.
    match store
        .gated_start(&gate(&key, 0, None, &order), opening(at(1)), feed, at(1))
        .await
        .unwrap()
    {
        Gated::Refused(admission) => assert!(admission.counts.is_empty()),
        other => panic!("the gate let it through: {other:?}"),
    }
    assert!(store.latest(&n, &key, at(2)).await.unwrap().is_none());
    assert_eq!(
        store.count("gated-started", HOUR_MS, at(2)).await.unwrap(),
        0
    );
    // The one send the budget allows is still there.
    match store
        .gated_start(&gate(&key, 5, None, &[]), opening(at(2)), feed, at(2))
        .await
        .unwrap()
    {
        Gated::Started {
            outcome: StartOutcome::Created(_),
            fed,
        } => assert_eq!(fed.unwrap(), [(1, 0)]),
        other => panic!("expected a new verification, got {other:?}"),
    }
}

async fn a_gated_start_past_its_gate_opens_and_feeds_only_a_new_verification<S: AdmissionStore>(
    store: &S,
) {
    let f = Fixture::new();
    let n = number();
    let key = f.keyring.number_key(&n);
    let opening = |now| Opening {
        new: f.new_verification(&n, &OtpCode::generate(CodeLength::default()), now),
        key: &key,
        policy: POLICY,
        budget: BUDGET,
    };
    // Three starts in the hour before, one approval.
    store.add("fed-started", HOUR_MS, 3, T0).await.unwrap();
    store.add("fed-approved", HOUR_MS, 1, T0).await.unwrap();
    let now = T0.plus(Duration::from_millis(HOUR_MS));
    let feed = Feed {
        counters: &[("fed-started", 1), ("fed-approved", 0)],
        window_ms: HOUR_MS,
    };
    let order = hits(&[("fed-ip:a", 10)]);
    let created = store
        .gated_start(&gate(&key, 5, None, &order), opening(now), feed, now)
        .await
        .unwrap();
    let Gated::Started {
        outcome: StartOutcome::Created(v),
        fed,
    } = created
    else {
        panic!("expected a new verification, got {created:?}");
    };
    assert_eq!(fed.unwrap(), [(1, 3), (0, 1)]);
    assert_eq!(
        store
            .get(&v.id, Owner::Any, now)
            .await
            .unwrap()
            .map(|r| r.id),
        Some(v.id.clone())
    );
    // Within the cooldown: the open one's refusal, counted by the gate and
    // fed nothing.
    let again = store
        .gated_start(
            &gate(&key, 5, None, &order),
            opening(at(3601)),
            feed,
            at(3601),
        )
        .await
        .unwrap();
    match again {
        Gated::Started {
            outcome: StartOutcome::Refused { verification, .. },
            fed,
        } => {
            assert_eq!(verification.id, v.id);
            assert!(fed.unwrap().is_empty());
        }
        other => panic!("expected the cooldown, got {other:?}"),
    }
    assert_eq!(store.count("fed-ip:a", HOUR_MS, at(3602)).await.unwrap(), 2);
    assert_eq!(
        store.count("fed-started", HOUR_MS, at(3602)).await.unwrap(),
        1
    );
}

/// Rate-limit counters in Redis, however they are counted (one at a time,
/// several in order, or by a gated start), expire within twice their
/// window, so none outlives it; reading one creates none.
#[tokio::test]
async fn rate_limit_counters_in_redis_expire_within_twice_their_window() {
    let prefix = crate::common::unique_prefix();
    let store = redis_store_with(&prefix, store_keyring()).await;
    store.add("ttl:a", HOUR_MS, 3, at(0)).await.unwrap();
    store.add("ttl:read", HOUR_MS, 0, at(0)).await.unwrap();
    let order = hits(&[("ttl:b", 5), ("ttl:c", 5)]);
    assert_eq!(store.hit_in_order(&order, at(0)).await.unwrap(), [1, 1]);
    // A gated start's counters: its gate's hit and its feed's.
    let f = Fixture::with(store_keyring());
    let n = number();
    let key = f.keyring.number_key(&n);
    let opening = Opening {
        new: f.new_verification(&n, &OtpCode::generate(CodeLength::default()), at(0)),
        key: &key,
        policy: POLICY,
        budget: BUDGET,
    };
    let feed = Feed {
        counters: &[("ttl:fed", 1)],
        window_ms: HOUR_MS,
    };
    let gated = store
        .gated_start(
            &gate(&key, 5, None, &hits(&[("ttl:gate", 5)])),
            opening,
            feed,
            at(0),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            gated,
            Gated::Started {
                outcome: StartOutcome::Created(_),
                ..
            }
        ),
        "{gated:?}"
    );
    let mut conn = crate::common::redis_conn().await;
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}:*rl:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    // Each of those counters (the feed's previous window is only read, and
    // so is "ttl:read": a read creates no counter), and the number's send
    // budget in the number's slot.
    assert_eq!(keys.len(), 6, "{keys:?}");
    assert!(!keys.iter().any(|k| k.contains("ttl:read")), "{keys:?}");
    for key in keys {
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let most = i64::try_from(2 * HOUR_MS).unwrap();
        assert!(ttl > 0 && ttl <= most, "{key}: {ttl}");
    }
}

/// A Redis that lost the scripts (restarted, flushed, or a new node) answers
/// their hash with NOSCRIPT: the store loads the script and runs the call.
#[tokio::test]
async fn a_redis_that_forgot_the_scripts_is_given_them_again_and_the_call_goes_through() {
    let store = redis_store().await;
    let f = Fixture::new();
    let n = number();
    let (v, code) = f.open(&store, &n, T0).await;
    let mut conn = crate::common::redis_conn().await;
    let () = ::redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let (result, checked) = f
        .check(&store, &n, code.expose(), T0)
        .await
        .expect("the verification is found");
    assert_eq!(result, CheckResult::Approved);
    assert_eq!(checked.id, v.id);
}
