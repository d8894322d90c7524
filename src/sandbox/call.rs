//! How the simulator plays a call: it fetches the answer URL with a signed
//! request carrying Plivo's fields, follows the XML it gets (Speak, Wait,
//! GetDigits, Redirect, Hangup), records what was spoken, presses 1 for the
//! documented test number, and finally posts the signed hangup URL.

use std::time::Instant;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::numbers;
use super::state::{SandboxState, now_text};
use crate::domain::random::uuid_v4;

/// Most XML documents one simulated call will follow (answer, actions, redirects).
const MAX_DOCUMENTS: usize = 12;
/// Times the "presses 1" test number presses 1 (more than the server allows).
const MAX_PRESSES: usize = 5;

/// One instruction of a Plivo XML document, as far as the simulator acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Speak(String),
    Wait,
    GetDigits {
        action: Option<String>,
        prompts: Vec<String>,
    },
    Redirect(String),
    Hangup,
}

/// Reads a Plivo XML document into steps. Text inside `<Speak>` keeps SSML's
/// text (a `say-as` digit is spoken as that digit) and drops its tags.
pub fn parse_steps(xml: &str) -> Result<Vec<Step>, String> {
    let mut reader = Reader::from_str(xml);
    let mut steps = Vec::new();
    let mut speak: Option<String> = None;
    let mut digits: Option<(Option<String>, Vec<String>)> = None;
    let mut redirect: Option<String> = None;
    let mut saw_response = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("answer XML is not well-formed: {e}"))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let opens = matches!(event, Event::Start(_));
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let attr = |key: &str| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == key.as_bytes())
                        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                };
                match name.as_str() {
                    "Response" => saw_response = true,
                    "Speak" if opens => speak = Some(String::new()),
                    "GetDigits" if opens => digits = Some((attr("action"), Vec::new())),
                    "GetDigits" => steps.push(Step::GetDigits {
                        action: attr("action"),
                        prompts: Vec::new(),
                    }),
                    "Redirect" if opens => redirect = Some(String::new()),
                    "Wait" => steps.push(Step::Wait),
                    "Hangup" => steps.push(Step::Hangup),
                    "break" => {
                        if let Some(text) = speak.as_mut() {
                            text.push(' ');
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| format!("bad text: {e}"))?;
                if let Some(s) = speak.as_mut() {
                    s.push_str(&text);
                } else if let Some(r) = redirect.as_mut() {
                    r.push_str(text.trim());
                }
            }
            Event::End(e) => match e.name().as_ref() {
                b"Speak" => {
                    let text = speak.take().unwrap_or_default();
                    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
                    match digits.as_mut() {
                        Some((_, prompts)) => prompts.push(text),
                        None => steps.push(Step::Speak(text)),
                    }
                }
                b"GetDigits" => {
                    if let Some((action, prompts)) = digits.take() {
                        steps.push(Step::GetDigits { action, prompts });
                    }
                }
                b"Redirect" => {
                    if let Some(url) = redirect.take() {
                        steps.push(Step::Redirect(url));
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_response {
        return Err("answer XML has no <Response>".into());
    }
    Ok(steps)
}

/// What a Call request asked for, handed to the call player.
#[derive(Debug, Clone)]
pub struct CallFields {
    pub from: String,
    pub to: String,
    pub answer_url: String,
    pub hangup_url: String,
    pub request_uuid: String,
}

/// What the caller did.
struct Leg {
    call_uuid: String,
    request_uuid: String,
    from: String,
    to: String,
}

impl Leg {
    fn params(&self, extra: &[(&str, String)]) -> Vec<(String, String)> {
        let mut p = vec![
            ("CallUUID".to_owned(), self.call_uuid.clone()),
            (
                "From".to_owned(),
                self.from.trim_start_matches('+').to_owned(),
            ),
            ("To".to_owned(), self.to.trim_start_matches('+').to_owned()),
            ("Direction".to_owned(), "outbound".to_owned()),
            ("ALegUUID".to_owned(), self.call_uuid.clone()),
            ("ALegRequestUUID".to_owned(), self.request_uuid.clone()),
            ("RequestUUID".to_owned(), self.request_uuid.clone()),
        ];
        p.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        p
    }
}

/// Plays one call to its end; every outcome is recorded on the sandbox's call list.
pub async fn play(state: std::sync::Arc<SandboxState>, request: CallFields) {
    let leg = Leg {
        call_uuid: uuid_v4(),
        request_uuid: request.request_uuid.clone(),
        from: request.from.clone(),
        to: request.to.clone(),
    };
    state.update_call(&leg.request_uuid, |c| {
        c.call_uuid.clone_from(&leg.call_uuid)
    });
    let started = Instant::now();
    let start_time = now_text();
    if request.to == numbers::CALL_NO_ANSWER {
        state.update_call(&leg.request_uuid, |c| c.status = "no-answer".to_owned());
        let params = leg.params(&[
            ("CallStatus", "no-answer".to_owned()),
            ("Event", "Hangup".to_owned()),
            ("HangupCause", "No Answer".to_owned()),
            ("HangupCauseName", "No Answer".to_owned()),
            ("HangupCauseCode", "3020".to_owned()),
            ("HangupSource", "Carrier".to_owned()),
            ("Duration", "0".to_owned()),
            ("BillDuration", "0".to_owned()),
            ("StartTime", start_time),
            ("AnswerTime", String::new()),
            ("EndTime", now_text()),
        ]);
        state.post_signed(&request.hangup_url, &params).await.ok();
        return;
    }
    state.update_call(&leg.request_uuid, |c| c.status = "in-progress".to_owned());
    let answer_time = now_text();
    let presses_one = request.to == numbers::CALL_PRESSES_ONE;
    let mut presses = 0;
    let mut next = Some((
        request.answer_url.clone(),
        leg.params(&[
            ("CallStatus", "in-progress".to_owned()),
            ("Event", "StartApp".to_owned()),
            ("CallerName", leg.from.clone()),
            ("BillRate", "0.0085".to_owned()),
        ]),
    ));
    let mut cause = ("End Of XML Instructions", "4010");
    let mut documents = 0;
    'documents: while let Some((url, params)) = next.take() {
        documents += 1;
        if documents > MAX_DOCUMENTS {
            break;
        }
        let xml = match state.post_signed(&url, &params).await {
            Ok(xml) => xml,
            Err(e) => {
                state.update_call(&leg.request_uuid, |c| {
                    c.spoken.push(format!("[error: {e}]"))
                });
                cause = ("Error Fetching XML", "7011");
                break;
            }
        };
        if documents == 1 {
            state.update_call(&leg.request_uuid, |c| c.answer_xml.clone_from(&xml));
        }
        let steps = match parse_steps(&xml) {
            Ok(steps) => steps,
            Err(e) => {
                state.update_call(&leg.request_uuid, |c| {
                    c.spoken.push(format!("[error: {e}]"))
                });
                cause = ("Invalid Answer XML", "7012");
                break;
            }
        };
        for step in steps {
            match step {
                Step::Speak(text) => state.update_call(&leg.request_uuid, |c| c.spoken.push(text)),
                Step::Wait => {}
                Step::GetDigits { action, prompts } => {
                    state.update_call(&leg.request_uuid, |c| c.spoken.extend(prompts));
                    if presses_one
                        && presses < MAX_PRESSES
                        && let Some(action) = action
                    {
                        presses += 1;
                        state.update_call(&leg.request_uuid, |c| c.digits.push('1'));
                        next = Some((
                            action,
                            leg.params(&[
                                ("CallStatus", "in-progress".to_owned()),
                                ("Event", "GetDigits".to_owned()),
                                ("Digits", "1".to_owned()),
                            ]),
                        ));
                        continue 'documents;
                    }
                }
                Step::Redirect(url) => {
                    next = Some((url, leg.params(&[("CallStatus", "in-progress".to_owned())])));
                    continue 'documents;
                }
                Step::Hangup => {
                    cause = ("Normal Hangup", "4000");
                    break 'documents;
                }
            }
        }
    }
    let duration = started.elapsed().as_secs().max(1).to_string();
    state.update_call(&leg.request_uuid, |c| c.status = "completed".to_owned());
    let params = leg.params(&[
        ("CallStatus", "completed".to_owned()),
        ("Event", "Hangup".to_owned()),
        ("HangupCause", cause.0.to_owned()),
        ("HangupCauseName", cause.0.to_owned()),
        ("HangupCauseCode", cause.1.to_owned()),
        ("HangupSource", "Answer XML".to_owned()),
        ("Duration", duration.clone()),
        ("BillDuration", duration),
        ("StartTime", start_time),
        ("AnswerTime", answer_time),
        ("EndTime", now_text()),
    ]);
    if let Err(e) = state.post_signed(&request.hangup_url, &params).await {
        tracing::warn!(error = %e, "sandbox: hangup callback failed");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ssml_digits_are_spoken_and_tags_dropped() {
        let xml = r#"<Response><Speak voice="Polly.Joanna" language="en-US">Code: <say-as interpret-as="digits">4</say-as><break time="400ms"/><say-as interpret-as="digits">2</say-as>.</Speak><GetDigits action="https://x/a?n=1" method="POST"><Speak>Press 1.</Speak></GetDigits><Hangup/></Response>"#;
        let steps = parse_steps(xml).unwrap();
        assert_eq!(steps[0], Step::Speak("Code: 4 2.".to_owned()));
        assert_eq!(
            steps[1],
            Step::GetDigits {
                action: Some("https://x/a?n=1".to_owned()),
                prompts: vec!["Press 1.".to_owned()]
            }
        );
        assert_eq!(steps[2], Step::Hangup);
    }

    #[test]
    fn a_document_without_response_or_malformed_is_an_error() {
        assert!(parse_steps("<Speak>hi</Speak>").is_err());
        assert!(parse_steps("<Response><Speak>hi</Response>").is_err());
    }
}
