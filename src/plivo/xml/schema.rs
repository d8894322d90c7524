//! The Plivo XML this server's templates may hold: the elements (Plivo's
//! verbs and the SSML a Polly voice reads), where each may stand, Plivo's
//! documented attributes for each and the values they take, and the voices.
//! A table the compiler checks templates against; it knows nothing of
//! placeholders or rendering.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Element {
    Response,
    Speak,
    Play,
    Wait,
    GetDigits,
    GetInput,
    Hangup,
    Redirect,
    PreAnswer,
    Dtmf,
    SayAs,
    Break,
    Prosody,
    Emphasis,
    Lang,
    P,
    S,
    Sub,
    W,
    Phoneme,
}

const VERBS: &[Element] = &[
    Element::Speak,
    Element::Play,
    Element::Wait,
    Element::GetDigits,
    Element::GetInput,
    Element::Hangup,
    Element::Redirect,
    Element::PreAnswer,
    Element::Dtmf,
];

const SSML: &[Element] = &[
    Element::SayAs,
    Element::Break,
    Element::Prosody,
    Element::Emphasis,
    Element::Lang,
    Element::P,
    Element::S,
    Element::Sub,
    Element::W,
    Element::Phoneme,
];

pub(super) const ALL_ELEMENTS: &[Element] = &[
    Element::Response,
    Element::Speak,
    Element::Play,
    Element::Wait,
    Element::GetDigits,
    Element::GetInput,
    Element::Hangup,
    Element::Redirect,
    Element::PreAnswer,
    Element::Dtmf,
    Element::SayAs,
    Element::Break,
    Element::Prosody,
    Element::Emphasis,
    Element::Lang,
    Element::P,
    Element::S,
    Element::Sub,
    Element::W,
    Element::Phoneme,
];

/// Attributes whose value must be a non-negative integer.
const INTEGER_ATTRIBUTES: &[&str] = &[
    "loop",
    "length",
    "minSilence",
    "timeout",
    "digitTimeout",
    "numDigits",
    "retries",
    "executionTimeout",
    "digitEndTimeout",
    "schedule",
];

/// Attributes whose value must be `true` or `false`.
const BOOLEAN_ATTRIBUTES: &[&str] = &[
    "silence",
    "beep",
    "redirect",
    "playBeep",
    "log",
    "async",
    "profanityFilter",
];

impl Element {
    pub(super) fn name(self) -> &'static str {
        match self {
            Element::Response => "Response",
            Element::Speak => "Speak",
            Element::Play => "Play",
            Element::Wait => "Wait",
            Element::GetDigits => "GetDigits",
            Element::GetInput => "GetInput",
            Element::Hangup => "Hangup",
            Element::Redirect => "Redirect",
            Element::PreAnswer => "PreAnswer",
            Element::Dtmf => "DTMF",
            Element::SayAs => "say-as",
            Element::Break => "break",
            Element::Prosody => "prosody",
            Element::Emphasis => "emphasis",
            Element::Lang => "lang",
            Element::P => "p",
            Element::S => "s",
            Element::Sub => "sub",
            Element::W => "w",
            Element::Phoneme => "phoneme",
        }
    }

    pub(super) fn from_name(name: &[u8]) -> Option<Self> {
        ALL_ELEMENTS
            .iter()
            .copied()
            .find(|e| e.name().as_bytes() == name)
    }

    /// Plivo's documented attributes for the element.
    pub(super) fn attributes(self) -> &'static [&'static str] {
        match self {
            Element::Response | Element::PreAnswer | Element::P | Element::S => &[],
            Element::Speak => &["voice", "language", "loop"],
            Element::Play => &["loop"],
            Element::Wait => &["length", "silence", "minSilence", "beep"],
            Element::GetDigits => &[
                "action",
                "method",
                "timeout",
                "digitTimeout",
                "finishOnKey",
                "numDigits",
                "retries",
                "redirect",
                "playBeep",
                "validDigits",
                "invalidDigitsSound",
                "log",
            ],
            Element::GetInput => &[
                "action",
                "method",
                "inputType",
                "executionTimeout",
                "digitEndTimeout",
                "speechEndTimeout",
                "finishOnKey",
                "numDigits",
                "speechModel",
                "hints",
                "language",
                "interimSpeechResultsCallback",
                "interimSpeechResultsCallbackMethod",
                "log",
                "redirect",
                "profanityFilter",
            ],
            Element::Hangup => &["reason", "schedule"],
            Element::Redirect => &["method"],
            Element::Dtmf => &["async"],
            Element::SayAs => &["interpret-as", "format"],
            Element::Break => &["strength", "time"],
            Element::Prosody => &["rate", "pitch", "volume"],
            Element::Emphasis => &["level"],
            Element::Lang => &["xml:lang"],
            Element::Sub => &["alias"],
            Element::W => &["role"],
            Element::Phoneme => &["alphabet", "ph"],
        }
    }

    pub(super) fn children(self) -> &'static [Element] {
        match self {
            Element::Response => VERBS,
            Element::GetDigits | Element::GetInput => &[Element::Speak, Element::Play],
            Element::PreAnswer => &[Element::Speak, Element::Play, Element::Wait],
            Element::Speak
            | Element::Prosody
            | Element::Emphasis
            | Element::Lang
            | Element::P
            | Element::S => SSML,
            _ => &[],
        }
    }

    pub(super) fn takes_text(self) -> bool {
        matches!(self, Element::Play | Element::Redirect | Element::Dtmf)
            || self == Element::Speak
            || self.is_ssml()
    }

    pub(super) fn is_ssml(self) -> bool {
        SSML.contains(&self)
    }

    /// Elements whose text may hold the spoken code: the SSML leaves
    /// (`say-as`, `sub`, …) would wrap our own `<say-as>` and nest it.
    pub(super) fn may_hold_code(self) -> bool {
        matches!(
            self,
            Element::Speak
                | Element::Prosody
                | Element::Emphasis
                | Element::Lang
                | Element::P
                | Element::S
        )
    }
}

/// What is wrong with a generic attribute's value, if anything.
pub(super) fn value_complaint(key: &str, value: &str) -> Option<&'static str> {
    if key == "method" || key == "interimSpeechResultsCallbackMethod" {
        (value != "GET" && value != "POST").then_some("must be GET or POST")
    } else if INTEGER_ATTRIBUTES.contains(&key) {
        (value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()))
            .then_some("must be a whole number")
    } else if BOOLEAN_ATTRIBUTES.contains(&key) {
        (value != "true" && value != "false").then_some("must be true or false")
    } else {
        None
    }
}

/// A `<Speak>` voice: `WOMAN`, `MAN` or `Polly.<Name>`.
pub(super) fn voice_of(value: &str) -> Option<Voice> {
    match value {
        "WOMAN" | "MAN" => Some(Voice::Basic),
        _ => value
            .strip_prefix("Polly.")
            .filter(|name| {
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            .map(|_| Voice::Polly),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Voice {
    Polly,
    Basic,
}
