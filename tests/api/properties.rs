//! Properties of codes and of the verification life cycle, checked on many
//! random inputs: the pure transitions of `Verification`, and random
//! sequences of starts, checks and cancels against the in-memory store.

use std::time::Duration;

use plivo_2fa::domain::verification::{CheckResult, DEFAULT_MAX_ATTEMPTS, SendPolicy};
use plivo_2fa::domain::{
    ApplicationId, Channel, CodeLength, Keyring, Locale, OtpCode, PhoneNumber, Status, Timestamp,
    Verification, VerificationId,
};
use plivo_2fa::store::{
    CheckTarget, FailureWindows, Finish, MemoryStore, NewVerification, Owner, SendBudget,
    StartOutcome, VerificationStore,
};
use proptest::prelude::*;

const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);
const LIFETIME_MS: u64 = 600_000;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + ms)
}

// ---------------------------------------------------------------------------
// Codes
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn a_generated_code_always_has_exactly_the_configured_number_of_ascii_digits(
        n in 4u8..=10,
    ) {
        let len = CodeLength::new(n).unwrap();
        let code = OtpCode::generate(len);
        prop_assert_eq!(code.expose().len(), usize::from(n));
        prop_assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
        let parsed = OtpCode::parse(code.expose(), len);
        prop_assert!(parsed.is_ok());
        let debug = format!("{code:?}");
        prop_assert!(!debug.contains(code.expose()));
    }
}

#[test]
fn four_digit_codes_cover_every_value_from_0000_to_9999_evenly() {
    const DRAWS: usize = 300_000;
    let len = CodeLength::new(4).unwrap();
    let mut seen = vec![0u32; 10_000];
    for _ in 0..DRAWS {
        let code = OtpCode::generate(len);
        let value: usize = code.expose().parse().unwrap();
        seen[value] += 1;
    }
    // 300k draws over 10k values miss a given one with p = e^-30.
    let missing: Vec<usize> = (0..10_000).filter(|v| seen[*v] == 0).collect();
    assert!(missing.is_empty(), "never drawn: {missing:?}");
    // Chi-square with 9,999 degrees of freedom: mean 9,999, sd about 141.
    // Eight sd above the mean flags a biased generator, never a fair one.
    let expected = DRAWS as f64 / 10_000.0;
    let chi2: f64 = seen
        .iter()
        .map(|&o| (f64::from(o) - expected).powi(2) / expected)
        .sum();
    assert!(chi2 < 9_999.0 + 8.0 * 141.4, "chi-square {chi2}");
}

// ---------------------------------------------------------------------------
// The verification state machine
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Check {
        matched: bool,
    },
    Cancel,
    Fail,
    Resend {
        voice: bool,
        cooldown_ms: u64,
        max_sends: u32,
    },
}

/// One step: an operation at a time relative to T0. Times wander back and
/// forth (instances' clocks disagree) and past the expiry.
fn step() -> impl Strategy<Value = (Op, i64)> {
    let op = prop_oneof![
        4 => any::<bool>().prop_map(|matched| Op::Check { matched }),
        1 => Just(Op::Cancel),
        1 => Just(Op::Fail),
        2 => (any::<bool>(), 0u64..60_000, 0u32..6).prop_map(|(voice, cooldown_ms, max_sends)| {
            Op::Resend { voice, cooldown_ms, max_sends }
        }),
    ];
    let lifetime = i64::try_from(LIFETIME_MS).unwrap();
    (op, -60_000..2 * lifetime)
}

/// A freshly started verification allowing `max_attempts`, with `attempts`
/// already used.
fn started(max_attempts: u32, attempts: u32) -> Verification {
    Verification {
        id: VerificationId::generate("abcd"),
        application: ApplicationId::default(),
        to: PhoneNumber::parse("+14155550100").unwrap(),
        channel: Channel::Sms,
        locale: Locale::default(),
        status: Status::Pending,
        created_at: T0,
        expires_at: T0.plus(Duration::from_millis(LIFETIME_MS)),
        attempts,
        max_attempts,
        sends: 1,
        last_sent_at: T0,
        deliveries: vec![],
        fallbacks: Vec::new(),
    }
}

fn pending_verification() -> impl Strategy<Value = Verification> {
    (1u32..=10)
        .prop_flat_map(|max| (Just(max), 0..max))
        .prop_map(|(max, attempts)| started(max, attempts))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn a_verification_is_approved_at_most_once_and_only_by_a_matching_check_in_time(
        mut v in pending_verification(),
        steps in prop::collection::vec(step(), 0..40),
    ) {
        let mut approvals = 0;
        for (op, ms) in steps {
            let now = at(ms);
            let before = v.clone();
            if let Op::Check { matched } = op {
                if v.check(matched, now) == CheckResult::Approved {
                    approvals += 1;
                    prop_assert!(matched, "approved by a code that did not match");
                    prop_assert_eq!(before.status, Status::Pending);
                    prop_assert!(now < before.expires_at, "approved after expiry");
                    prop_assert_eq!(v.status, Status::Approved);
                }
            } else {
                apply(&mut v, &op, now);
            }
            prop_assert!(approvals <= 1, "approved {} times", approvals);
        }
    }

    #[test]
    fn no_transition_ever_leaves_a_final_state(
        mut v in pending_verification(),
        steps in prop::collection::vec(step(), 0..40),
    ) {
        let mut final_status: Option<Status> = None;
        for (op, ms) in steps {
            let now = at(ms);
            apply(&mut v, &op, now);
            if let Some(status) = final_status {
                prop_assert_eq!(v.status, status, "{:?} left a final state", op);
                prop_assert_eq!(v.status_at(now), status);
            } else if v.status.is_final() {
                final_status = Some(v.status);
            }
        }
    }

    #[test]
    fn attempts_only_grow_one_wrong_check_at_a_time_and_never_pass_the_maximum(
        mut v in pending_verification(),
        steps in prop::collection::vec(step(), 0..40),
    ) {
        for (op, ms) in steps {
            let now = at(ms);
            let before = v.clone();
            let result = apply(&mut v, &op, now);
            prop_assert!(v.attempts >= before.attempts, "attempts went down");
            prop_assert!(v.attempts <= v.max_attempts);
            prop_assert!(v.attempts_remaining() <= v.max_attempts);
            prop_assert_eq!(v.attempts_remaining(), v.max_attempts - v.attempts);
            match result {
                Some(CheckResult::Wrong) => {
                    prop_assert_eq!(v.attempts, before.attempts + 1);
                    prop_assert_eq!(v.status, Status::Pending);
                }
                Some(CheckResult::Exhausted) => {
                    prop_assert_eq!(v.attempts, v.max_attempts);
                    prop_assert_eq!(v.attempts_remaining(), 0);
                    prop_assert_eq!(v.status, Status::MaxAttemptsReached);
                }
                _ => prop_assert_eq!(v.attempts, before.attempts),
            }
        }
    }

    #[test]
    fn a_refused_or_expired_check_changes_nothing_but_settling_the_expiry(
        mut v in pending_verification(),
        steps in prop::collection::vec(step(), 0..40),
    ) {
        for (op, ms) in steps {
            let now = at(ms);
            let before = v.clone();
            match apply(&mut v, &op, now) {
                Some(CheckResult::NotPending(status)) => {
                    prop_assert_eq!(status, before.status);
                    prop_assert_eq!(&v, &before);
                }
                Some(CheckResult::Expired) => {
                    prop_assert_eq!(before.status, Status::Pending);
                    prop_assert!(now >= before.expires_at);
                    prop_assert_eq!(v.status, Status::Expired);
                    prop_assert_eq!(v.attempts, before.attempts);
                }
                _ => {}
            }
        }
    }

    #[test]
    fn a_check_on_a_record_with_attempts_past_the_maximum_exhausts_it_without_panicking(
        max_attempts in 1u32..=10,
        attempts in prop_oneof![Just(u32::MAX), Just(u32::MAX - 1), any::<u32>()],
        matched in any::<bool>(),
    ) {
        let mut v = started(max_attempts, attempts.max(max_attempts));
        let result = v.check(matched, T0);
        prop_assert_eq!(v.attempts_remaining(), 0);
        if !matched {
            prop_assert_eq!(result, CheckResult::Exhausted);
            prop_assert_eq!(v.status, Status::MaxAttemptsReached);
        }
    }
}

/// Applies one operation; returns the check's result for a check.
fn apply(v: &mut Verification, op: &Op, now: Timestamp) -> Option<CheckResult> {
    match *op {
        Op::Check { matched } => return Some(v.check(matched, now)),
        Op::Cancel => {
            let _ = v.cancel(now);
        }
        Op::Fail => {
            let _ = v.fail(now);
        }
        Op::Resend {
            voice,
            cooldown_ms,
            max_sends,
        } => {
            let channel = if voice { Channel::Voice } else { Channel::Sms };
            let policy = SendPolicy {
                cooldown_ms,
                max_sends,
            };
            let _ = v.resend(channel, policy, now);
        }
    }
    None
}

// ---------------------------------------------------------------------------
// The in-memory store
// ---------------------------------------------------------------------------

/// Phone numbers the store sequences spread over; few, so they collide.
const NUMBERS: [&str; 3] = ["+14155550100", "+447400123456", "+33612345678"];

#[derive(Debug, Clone)]
enum StoreOp {
    Start {
        number: usize,
    },
    /// Checks a number's open verification with its right code or a wrong one.
    CheckNumber {
        number: usize,
        right: bool,
    },
    /// Checks the `which`-th verification created (modulo the count) by id.
    CheckId {
        which: usize,
        right: bool,
    },
    Cancel {
        which: usize,
    },
}

fn store_step() -> impl Strategy<Value = (StoreOp, u64)> {
    let number = 0..NUMBERS.len();
    let op = prop_oneof![
        2 => number.clone().prop_map(|number| StoreOp::Start { number }),
        4 => (number, any::<bool>()).prop_map(|(number, right)| StoreOp::CheckNumber { number, right }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(which, right)| StoreOp::CheckId { which, right }),
        1 => any::<usize>().prop_map(|which| StoreOp::Cancel { which }),
    ];
    // Time only moves forward here (one process, one clock), sometimes past
    // the lifetime or the re-send cooldown.
    (op, prop_oneof![3 => 0u64..40_000, 1 => 0..LIFETIME_MS])
}

/// What the test remembers about a verification it created.
struct Created {
    id: VerificationId,
    number: usize,
    code: OtpCode,
    approvals: u32,
}

async fn run_store_sequence(steps: Vec<(StoreOp, u64)>) -> Result<(), TestCaseError> {
    const POLICY: SendPolicy = SendPolicy {
        cooldown_ms: 30_000,
        max_sends: 3,
    };
    // Budgets and lockouts are the contract suite's; here they never bind.
    const BUDGET: SendBudget = SendBudget {
        max: u64::MAX,
        window_ms: 60_000,
    };
    const WINDOWS: FailureWindows = FailureWindows {
        lockout_ms: 3_600_000,
        day_ms: 86_400_000,
    };
    let store = MemoryStore::new();
    let keyring = Keyring::random();
    let numbers: Vec<PhoneNumber> = NUMBERS
        .iter()
        .map(|n| PhoneNumber::parse(n).unwrap())
        .collect();
    let mut created: Vec<Created> = Vec::new();
    let mut now = T0;
    let record = |created: &mut Vec<Created>, result: CheckResult, id: &VerificationId| {
        if result == CheckResult::Approved {
            let c = created
                .iter_mut()
                .find(|c| &c.id == id)
                .expect("a created id");
            c.approvals += 1;
        }
    };

    for (op, dt) in steps {
        now = now.plus(Duration::from_millis(dt));
        match op {
            StoreOp::Start { number } => {
                let to = &numbers[number];
                let key = keyring.number_key(to);
                let code = OtpCode::generate(CodeLength::default());
                let id = VerificationId::generate(&key.tag);
                let new = NewVerification {
                    digest: keyring.primary_digest(&code),
                    sealed: keyring.seal(&code, id.as_str()),
                    verification: Verification {
                        id,
                        to: to.clone(),
                        created_at: now,
                        expires_at: now.plus(Duration::from_millis(LIFETIME_MS)),
                        last_sent_at: now,
                        ..started(DEFAULT_MAX_ATTEMPTS, 0)
                    },
                };
                match store.start(new, &key, POLICY, BUDGET, now).await.unwrap() {
                    StartOutcome::Created(v) => created.push(Created {
                        id: v.id,
                        number,
                        code,
                        approvals: 0,
                    }),
                    StartOutcome::Resend {
                        verification,
                        sealed,
                    } => {
                        let resent = keyring.open(&sealed, verification.id.as_str()).unwrap();
                        let original = created.iter().find(|c| c.id == verification.id).unwrap();
                        prop_assert_eq!(resent.expose(), original.code.expose());
                        prop_assert_eq!(verification.status, Status::Pending);
                    }
                    StartOutcome::Refused { verification, .. } => {
                        prop_assert_eq!(verification.status, Status::Pending);
                    }
                    StartOutcome::NumberLimited { .. } => {
                        prop_assert!(false, "the budget is unbounded here");
                    }
                }
            }
            StoreOp::CheckNumber { number, right } => {
                let to = &numbers[number];
                let Some(latest) = created.iter().rev().find(|c| c.number == number) else {
                    continue;
                };
                let code = if right {
                    latest.code.clone()
                } else {
                    wrong(&latest.code)
                };
                let key = keyring.number_key(to);
                let target = CheckTarget::Number {
                    number: to,
                    key: &key,
                };
                if let Some((result, v)) = store
                    .check(target, Owner::Any, &keyring.digests(&code), WINDOWS, now)
                    .await
                    .unwrap()
                {
                    prop_assert_eq!(&v.to, to);
                    record(&mut created, result, &v.id);
                }
            }
            StoreOp::CheckId { which, right } => {
                if created.is_empty() {
                    continue;
                }
                let c = &created[which % created.len()];
                let code = if right {
                    c.code.clone()
                } else {
                    wrong(&c.code)
                };
                let id = c.id.clone();
                if let Some((result, v)) = store
                    .check(
                        CheckTarget::Id(&id),
                        Owner::Any,
                        &keyring.digests(&code),
                        WINDOWS,
                        now,
                    )
                    .await
                    .unwrap()
                {
                    prop_assert_eq!(&v.id, &id);
                    record(&mut created, result, &id);
                }
            }
            StoreOp::Cancel { which } => {
                if created.is_empty() {
                    continue;
                }
                let id = created[which % created.len()].id.clone();
                if let Some((Ok(()), v)) = store
                    .finish(&id, Owner::Any, Finish::Cancel, now)
                    .await
                    .unwrap()
                {
                    prop_assert_eq!(v.status, Status::Canceled);
                }
            }
        }
        for c in &created {
            prop_assert!(c.approvals <= 1, "{} approved {} times", c.id, c.approvals);
            if c.approvals == 1 {
                let v = store
                    .get(&c.id, Owner::Any, now)
                    .await
                    .unwrap()
                    .expect("kept for the retention period");
                prop_assert_eq!(v.status, Status::Approved);
            }
        }
    }
    Ok(())
}

/// Another code of the same length: every digit moved by one.
fn wrong(code: &OtpCode) -> OtpCode {
    let digits: String = code
        .expose()
        .bytes()
        .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
        .collect();
    OtpCode::parse(&digits, CodeLength::default()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_starts_checks_and_cancels_on_the_memory_store_approve_each_verification_at_most_once(
        steps in prop::collection::vec(store_step(), 1..60),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(run_store_sequence(steps))?;
    }
}
