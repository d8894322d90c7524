//! The automatic fallback's order (`FALLBACK_CHANNELS`): the channels a
//! verification's code goes out on, one after another, when a message does
//! not arrive. A WhatsApp verification goes through the whole list; an SMS
//! verification through the list without `sms` (so the default, `sms,voice`,
//! keeps the SMS→voice fallback as it always was); a call is the end of the
//! line and falls back to nothing.

use std::fmt;

use super::verification::Channel;

/// What asks for the next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackTrigger {
    /// A message on this channel was reported failed or undelivered: the
    /// step after that channel's (and no other: a late report about an
    /// earlier step moves nothing).
    Failed(Channel),
    /// No `delivered` or `read` came in time: the first step not taken yet.
    NoReceipt,
}

/// The fallback channels in order: SMS and voice, each at most once,
/// voice last (nothing follows a call). Never WhatsApp, which is where a
/// chain starts, not a step of it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FallbackChannels {
    steps: [Channel; 2],
    len: usize,
}

impl Default for FallbackChannels {
    /// `sms,voice`.
    fn default() -> Self {
        Self {
            steps: [Channel::Sms, Channel::Voice],
            len: 2,
        }
    }
}

impl fmt::Debug for FallbackChannels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_list())
    }
}

impl FallbackChannels {
    /// A comma-separated list such as `sms,voice`: known channels, no
    /// duplicates, no `whatsapp`, voice last, at least one.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut out = Self {
            steps: [Channel::Sms, Channel::Voice],
            len: 0,
        };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let channel = match name.parse::<Channel>() {
                Ok(Channel::WhatsApp) => {
                    return Err(
                        "whatsapp cannot be a fallback: a WhatsApp start falls back to the channels listed"
                            .to_owned(),
                    );
                }
                Ok(c) => c,
                Err(()) => return Err(format!("{name:?} is not a channel (sms or voice)")),
            };
            if out.as_slice().contains(&channel) {
                return Err(format!("{name} is listed twice"));
            }
            if out.as_slice().contains(&Channel::Voice) {
                return Err("voice must come last: nothing follows a call".to_owned());
            }
            out.steps[out.len] = channel;
            out.len += 1;
        }
        if out.len == 0 {
            return Err(
                "must name at least one channel: sms, voice (FALLBACK=false turns the fallback off)"
                    .to_owned(),
            );
        }
        Ok(out)
    }

    fn as_slice(&self) -> &[Channel] {
        &self.steps[..self.len]
    }

    /// The list without the channels `keep` refuses (an application that
    /// does not send SMS, or a server with no number to call from); `None`
    /// when nothing is left.
    pub fn only(self, keep: impl Fn(Channel) -> bool) -> Option<Self> {
        let mut out = Self { len: 0, ..self };
        for &c in self.as_slice() {
            if keep(c) {
                out.steps[out.len] = c;
                out.len += 1;
            }
        }
        (out.len > 0).then_some(out)
    }

    /// As the list is written (`sms,voice`): how the Redis script takes it.
    pub fn to_list(&self) -> String {
        self.as_slice()
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The steps of a verification sent on `channel`.
    pub fn chain(&self, channel: Channel) -> Vec<Channel> {
        match channel {
            Channel::WhatsApp => self.as_slice().to_vec(),
            Channel::Sms => self
                .as_slice()
                .iter()
                .copied()
                .filter(|c| *c != Channel::Sms)
                .collect(),
            Channel::Voice => Vec::new(),
        }
    }

    /// The step after a send on `sent` in the chain of a verification sent
    /// on `channel`: the first step for the verification's own channel.
    pub fn after(&self, channel: Channel, sent: Channel) -> Option<Channel> {
        let chain = self.chain(channel);
        if sent == channel {
            return chain.first().copied();
        }
        let at = chain.iter().position(|c| *c == sent)?;
        chain.get(at + 1).copied()
    }

    /// The step `trigger` asks for, of a verification sent on `channel`
    /// whose fallback already sent on `taken`.
    pub fn next(
        &self,
        channel: Channel,
        trigger: FallbackTrigger,
        taken: &[Channel],
    ) -> Option<Channel> {
        match trigger {
            FallbackTrigger::Failed(sent) => self.after(channel, sent),
            FallbackTrigger::NoReceipt => {
                self.chain(channel).into_iter().find(|c| !taken.contains(c))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_list_names_sms_and_voice_once_each_with_voice_last() {
        assert_eq!(
            FallbackChannels::parse("sms, voice").unwrap(),
            FallbackChannels::default()
        );
        assert_eq!(FallbackChannels::parse("voice").unwrap().to_list(), "voice");
        assert_eq!(FallbackChannels::parse("sms").unwrap().to_list(), "sms");
        for (bad, says) in [
            ("", "at least one"),
            ("sms,fax", "not a channel"),
            ("sms,sms", "twice"),
            ("voice,sms", "voice must come last"),
            ("sms,whatsapp", "whatsapp cannot be a fallback"),
        ] {
            let e = FallbackChannels::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn whatsapp_goes_through_the_list_and_sms_through_the_list_without_sms() {
        let d = FallbackChannels::default();
        assert_eq!(
            d.chain(Channel::WhatsApp),
            vec![Channel::Sms, Channel::Voice]
        );
        assert_eq!(d.chain(Channel::Sms), vec![Channel::Voice]);
        assert!(d.chain(Channel::Voice).is_empty());
        assert_eq!(
            d.after(Channel::WhatsApp, Channel::WhatsApp),
            Some(Channel::Sms)
        );
        assert_eq!(
            d.after(Channel::WhatsApp, Channel::Sms),
            Some(Channel::Voice)
        );
        assert_eq!(d.after(Channel::Sms, Channel::Sms), Some(Channel::Voice));
        assert_eq!(d.after(Channel::WhatsApp, Channel::Voice), None);
        let sms_only = FallbackChannels::parse("sms").unwrap();
        assert!(sms_only.chain(Channel::Sms).is_empty());
        let voice = FallbackChannels::parse("voice").unwrap();
        assert_eq!(
            voice.after(Channel::WhatsApp, Channel::WhatsApp),
            Some(Channel::Voice)
        );
        assert_eq!(
            voice.after(Channel::Sms, Channel::Sms),
            Some(Channel::Voice)
        );
    }

    #[test]
    fn a_missing_receipt_asks_for_the_first_step_not_taken() {
        let d = FallbackChannels::default();
        let next = |taken: &[Channel]| d.next(Channel::WhatsApp, FallbackTrigger::NoReceipt, taken);
        assert_eq!(next(&[]), Some(Channel::Sms));
        assert_eq!(next(&[Channel::Sms]), Some(Channel::Voice));
        assert_eq!(next(&[Channel::Sms, Channel::Voice]), None);
    }

    #[test]
    fn only_drops_the_channels_it_is_told_to() {
        let d = FallbackChannels::default();
        assert_eq!(d.only(|c| c != Channel::Voice).unwrap().to_list(), "sms");
        assert!(
            FallbackChannels::parse("voice")
                .unwrap()
                .only(|c| c != Channel::Voice)
                .is_none()
        );
    }
}
