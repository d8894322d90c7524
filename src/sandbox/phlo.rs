//! The sandbox's PHLO runner. It executes `phlo/2fa.json` (compiled into the
//! binary, so the definition a person builds in the console from phlo/README.md
//! is the one the tests run): start → branch on `mode` → Send Message, or
//! Initiate Call and, once answered, speak the code digit by digit.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::call::{Step, parse_steps};
use super::numbers;
use super::state::{SandboxCall, SandboxMessage, SandboxState};
use crate::domain::random::uuid_v4;

/// The 2FA PHLO, as shipped in phlo/.
pub const DEFINITION: &str = include_str!("../../phlo/2fa.json");

#[derive(Debug, Deserialize)]
pub struct Phlo {
    pub start: String,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Deserialize)]
pub struct Condition {
    pub equals: String,
    pub next: String,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeKind {
    Start {
        http_keys: Vec<String>,
        next: String,
    },
    Branch {
        variable: String,
        conditions: Vec<Condition>,
    },
    SendMessage {
        from: String,
        to: String,
        text: String,
        callback_url: Option<String>,
    },
    InitiateCall {
        from: String,
        to: String,
        hangup_url: Option<String>,
        on_answered: String,
    },
    PlayAudio {
        voice: String,
        language: String,
        ssml: String,
    },
}

#[derive(Debug, Deserialize)]
pub struct Node {
    pub id: String,
    #[serde(flatten)]
    pub kind: NodeKind,
}

pub fn definition() -> Result<Phlo, String> {
    serde_json::from_str(DEFINITION).map_err(|e| format!("phlo/2fa.json: {e}"))
}

/// The name of the PHLO's first node: Plivo's console calls it `Start`, and
/// its variables are `{{Start.http.params.KEY}}`, capital S.
pub const START_NODE: &str = "Start";

/// Replaces `{{Start.http.params.KEY}}` and `{{public_base_url}}`.
fn fill(template: &str, params: &HashMap<String, String>, base: &str) -> String {
    let mut out = template.replace("{{public_base_url}}", base);
    for (k, v) in params {
        out = out.replace(&format!("{{{{{START_NODE}.http.params.{k}}}}}"), v);
    }
    out
}

/// What a run did, for the API answer.
#[derive(Debug)]
pub enum PhloOutcome {
    /// The run started: a message is on its way or a call placed.
    Started,
    /// The payload does not fit the PHLO (missing keys, unknown mode…).
    Invalid(String),
}

/// Runs the PHLO for one trigger payload.
pub fn run(state: &Arc<SandboxState>, payload: &Map<String, Value>) -> PhloOutcome {
    let phlo = match definition() {
        Ok(p) => p,
        Err(e) => return PhloOutcome::Invalid(e),
    };
    let nodes: HashMap<&str, &Node> = phlo.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let mut params = HashMap::new();
    let mut current = phlo.start.clone();
    for _ in 0..phlo.nodes.len() + 1 {
        let Some(node) = nodes.get(current.as_str()) else {
            return PhloOutcome::Invalid(format!("no node {current:?}"));
        };
        match &node.kind {
            NodeKind::Start { http_keys, next } => {
                for key in http_keys {
                    let Some(value) = payload.get(key).and_then(|v| match v {
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    }) else {
                        return PhloOutcome::Invalid(format!(
                            "{key} is missing from the PHLO payload"
                        ));
                    };
                    params.insert(key.clone(), value);
                }
                current.clone_from(next);
            }
            NodeKind::Branch {
                variable,
                conditions,
            } => {
                let value = fill(variable, &params, &state.public_base);
                let Some(c) = conditions.iter().find(|c| c.equals == value) else {
                    return PhloOutcome::Invalid(format!("no branch for {value:?}"));
                };
                current.clone_from(&c.next);
            }
            NodeKind::SendMessage {
                from,
                to,
                text,
                callback_url,
            } => {
                let fill = |t: &str| fill(t, &params, &state.public_base);
                send_message(
                    state,
                    fill(from),
                    fill(to),
                    fill(text),
                    callback_url.as_deref().map(fill),
                );
                return PhloOutcome::Started;
            }
            NodeKind::InitiateCall {
                from,
                to,
                hangup_url,
                on_answered,
            } => {
                let Some(Node {
                    kind:
                        NodeKind::PlayAudio {
                            voice,
                            language,
                            ssml,
                        },
                    ..
                }) = nodes.get(on_answered.as_str())
                else {
                    return PhloOutcome::Invalid(format!(
                        "{on_answered:?} is not a play_audio node"
                    ));
                };
                let fill = |t: &str| fill(t, &params, &state.public_base);
                let xml = format!(
                    r#"<Response><Speak voice="{voice}" language="{language}">{}</Speak></Response>"#,
                    fill(ssml)
                );
                place_call(
                    state,
                    fill(from),
                    &fill(to),
                    xml,
                    hangup_url.as_deref().map(fill),
                );
                return PhloOutcome::Started;
            }
            NodeKind::PlayAudio { .. } => return PhloOutcome::Started,
        }
    }
    PhloOutcome::Invalid("the PHLO does not end".into())
}

/// The Send Message node: records the SMS and plays its receipts to `callback`.
fn send_message(
    state: &Arc<SandboxState>,
    from: String,
    to: String,
    text: String,
    callback: Option<String>,
) {
    let uuid = uuid_v4();
    state.record_message(SandboxMessage {
        to: to.clone(),
        from: from.clone(),
        text,
        kind: "sms".to_owned(),
        message_uuid: uuid.clone(),
        status: "queued".to_owned(),
        ..SandboxMessage::default()
    });
    if let Some(url) = callback {
        tokio::spawn(super::receipts::send(
            state.clone(),
            url,
            uuid,
            from,
            to,
            "sms".to_owned(),
        ));
    }
}

/// The Initiate Call node: the call is answered (and `xml` spoken) unless
/// `to` is the no-answer test number; its hangup is posted to `hangup_url`.
fn place_call(
    state: &Arc<SandboxState>,
    from: String,
    to: &str,
    xml: String,
    hangup_url: Option<String>,
) {
    let answered = to != numbers::CALL_NO_ANSWER;
    let spoken = if answered {
        parse_steps(&xml)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| match s {
                Step::Speak(t) => Some(t),
                _ => None,
            })
            .collect()
    } else {
        Vec::new()
    };
    let request_uuid = uuid_v4();
    let call_uuid = uuid_v4();
    let status = if answered { "completed" } else { "no-answer" };
    state.record_call(SandboxCall {
        to: to.to_owned(),
        from,
        call_uuid: call_uuid.clone(),
        request_uuid: request_uuid.clone(),
        answer_xml: if answered { xml } else { String::new() },
        spoken,
        digits: String::new(),
        status: status.to_owned(),
    });
    let Some(url) = hangup_url else {
        return;
    };
    let (cause, code, duration) = if answered {
        ("Normal Hangup", "4000", "12")
    } else {
        ("No Answer", "3020", "0")
    };
    let params: Vec<(String, String)> = [
        ("CallUUID", call_uuid.as_str()),
        ("RequestUUID", request_uuid.as_str()),
        ("To", to.trim_start_matches('+')),
        ("CallStatus", status),
        ("HangupCauseName", cause),
        ("HangupCauseCode", code),
        ("Duration", duration),
        ("Event", "Hangup"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = state.post_signed(&url, &params).await {
            tracing::warn!(error = %e, "sandbox: PHLO hangup callback failed");
        }
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_phlo_parses_and_branches_to_a_message_and_a_call() {
        let phlo = definition().unwrap();
        let kinds: Vec<&str> = phlo
            .nodes
            .iter()
            .map(|n| match n.kind {
                NodeKind::Start { .. } => "start",
                NodeKind::Branch { .. } => "branch",
                NodeKind::SendMessage { .. } => "send_message",
                NodeKind::InitiateCall { .. } => "initiate_call",
                NodeKind::PlayAudio { .. } => "play_audio",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "start",
                "branch",
                "send_message",
                "initiate_call",
                "play_audio"
            ]
        );
        let NodeKind::Start { http_keys, .. } = &phlo.nodes[0].kind else {
            unreachable!()
        };
        assert_eq!(http_keys, &["from", "to", "mode", "otp"]);
    }

    #[test]
    fn the_shipped_phlo_names_its_variables_as_plivos_console_does() {
        let phlo = definition().unwrap();
        assert_eq!(phlo.start, START_NODE);
        assert_eq!(phlo.nodes[0].id, START_NODE);
        // Every variable reads the Start node's payload, capital S as in Plivo's docs.
        let uses: Vec<&str> = DEFINITION
            .match_indices(".http.params.")
            .map(|(i, _)| &DEFINITION[..i])
            .collect();
        assert!(!uses.is_empty());
        for before in uses {
            assert!(
                before.ends_with("{{Start"),
                "{}",
                &before[before.len().saturating_sub(20)..]
            );
        }
    }

    #[test]
    fn placeholders_are_filled_from_the_payload() {
        let params = HashMap::from([("otp".to_owned(), "123456".to_owned())]);
        assert_eq!(
            fill(
                "{{public_base_url}}/x {{Start.http.params.otp}}",
                &params,
                "https://h"
            ),
            "https://h/x 123456"
        );
    }
}
