//! Connections: how many the server holds at once, how many one client may
//! hold, and the answers actix-http writes on its own.
//!
//! Every connection holds a file descriptor until it closes, and a client that
//! sends a request head and then trickles its body holds one for as long as
//! it likes (the body deadline in [`crate::routes::middleware`] cuts that to
//! seconds). So that one client cannot take them all:
//!
//! - at start-up the soft `RLIMIT_NOFILE` is raised to the hard limit, and the
//!   limits below are sized from it ([`raise_fd_limit`], [`Limits::sized`]);
//! - the server holds at most [`Limits::total`] connections, fewer than the
//!   descriptors, so Redis, Plivo and the logs always have some left: past it,
//!   new connections wait in the listen backlog, where they cost no descriptor;
//! - one client address (an IPv6 client by its /64) holds at most
//!   [`Limits::per_client`] of them ([`Gate`]); one more is answered 429
//!   `too_many_connections` and closed at once. `TRUSTED_PROXIES` are exempt:
//!   behind a proxy every client arrives from its address.
//!
//! [`Conn`] carries each admitted connection: it holds the client's slot until
//! the connection closes, and gives the answers that actix-http writes before
//! any route or middleware sees the request (400 for a request it cannot
//! parse, 431 for a head over its own limits, 408 for a head that did not
//! arrive in time; each with an empty body) the error shape of every other
//! answer. actix-http has no hook for those, so they are rewritten on their
//! way out, recognised by their exact form: one of these statuses with
//! `content-length: 0`, which no route of this server answers with.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::routes::error::ApiError;

/// File descriptors kept out of the connection budget: Redis connections, the
/// Plivo and webhook HTTP clients, the sandbox simulator's own connections,
/// the runtime's epoll and event descriptors, logs.
pub const RESERVED_FDS: u64 = 256;
/// The most connections held by default, however many descriptors there are:
/// each costs memory (buffers, a task), and tens of thousands serve any
/// deployment of this server.
pub const DEFAULT_MAX_CONNECTIONS: u64 = 50_000;
/// The most connections one client address holds by default…
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: u64 = 128;
/// …and never more than this share of all of them, so a handful of addresses
/// cannot take every connection either.
const PER_CLIENT_SHARE: u64 = 8;
/// The fewest connections the server runs with.
const MIN_CONNECTIONS: u64 = 16;
/// IPv6 clients are counted by their /64: one host usually holds a whole /64.
const IPV6_CLIENT_PREFIX: u8 = 64;
/// How long a refused client is told to wait.
const REFUSED_RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long the refusal may take to write: it fits any socket buffer.
const REFUSAL_WRITE: Duration = Duration::from_millis(100);
/// Statuses actix-http answers with on its own, with an empty body.
const CANNED: [(&[u8], Canned); 3] = [
    (b"400 ", Canned::Malformed),
    (b"408 ", Canned::HeadTimeout),
    (b"431 ", Canned::HeadTooLarge),
];

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the limit in force.
pub fn raise_fd_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            let soft = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
            tracing::warn!(error = %e, file_descriptors = soft, "cannot raise the file-descriptor limit");
            soft
        }
    }
}

/// How many connections the server holds, in all and per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub total: u64,
    pub per_client: u64,
}

/// Why the configured limits cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    #[error(
        "{configured} leaves fewer than {RESERVED_FDS} of the {fds} file descriptors this process may open (at most {most})"
    )]
    AboveFdLimit {
        configured: u64,
        fds: u64,
        most: u64,
    },
    #[error("{configured} is more than MAX_CONNECTIONS ({total})")]
    PerClientAboveTotal { configured: u64, total: u64 },
}

impl Limits {
    /// The limits for `fds` file descriptors: what was configured, else the
    /// defaults, sized so that [`RESERVED_FDS`] stay free.
    pub fn sized(
        fds: u64,
        total: Option<u64>,
        per_client: Option<u64>,
    ) -> Result<Self, LimitsError> {
        let most = fds.saturating_sub(RESERVED_FDS).max(MIN_CONNECTIONS);
        let total = match total {
            Some(configured) if configured > most => {
                return Err(LimitsError::AboveFdLimit {
                    configured,
                    fds,
                    most,
                });
            }
            Some(configured) => configured,
            None => most.min(DEFAULT_MAX_CONNECTIONS),
        };
        let per_client = match per_client {
            Some(configured) if configured > total => {
                return Err(LimitsError::PerClientAboveTotal { configured, total });
            }
            Some(configured) => configured,
            None => DEFAULT_MAX_CONNECTIONS_PER_CLIENT
                .min(total / PER_CLIENT_SHARE)
                .max(1),
        };
        Ok(Self { total, per_client })
    }
}

/// Counts the connections each client address holds, and refuses the one
/// past [`Limits::per_client`].
#[derive(Debug)]
pub struct Gate {
    per_client: u64,
    exempt: Vec<IpNet>,
    held: Mutex<HashMap<IpAddr, u64>>,
}

/// A client's hold on one connection, given back when the connection closes.
#[derive(Debug)]
pub struct Slot {
    gate: Arc<Gate>,
    /// `None` for an exempt peer.
    client: Option<IpAddr>,
}

/// The address a connection counts against: the peer, an IPv6 peer by its /64.
fn client_of(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => {
            let mask = u128::MAX << (128 - u32::from(IPV6_CLIENT_PREFIX));
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
        v4 => v4,
    }
}

impl Gate {
    pub fn new(per_client: u64, exempt: Vec<IpNet>) -> Arc<Self> {
        Arc::new(Self {
            per_client,
            exempt,
            held: Mutex::default(),
        })
    }

    /// A slot for one more connection from `peer`, unless it holds its share.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        let peer = peer.to_canonical();
        if self.exempt.iter().any(|net| net.contains(&peer)) {
            return Some(Slot {
                gate: Arc::clone(self),
                client: None,
            });
        }
        let client = client_of(peer);
        let mut held = self.lock();
        let count = held.entry(client).or_default();
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        Some(Slot {
            gate: Arc::clone(self),
            client: Some(client),
        })
    }

    /// Connections `peer`'s address holds now.
    pub fn held_by(&self, peer: IpAddr) -> u64 {
        self.lock()
            .get(&client_of(peer))
            .copied()
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u64>> {
        // Counts are plain integers: a panic elsewhere leaves them consistent.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(client) = self.client else {
            return;
        };
        let mut held = self.gate.lock();
        if let Some(count) = held.get_mut(&client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&client);
            }
        }
    }
}

/// Tells a client past its share why its connection closes (briefly: the
/// connection closes whether or not this was written).
pub async fn refuse(mut io: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let error = ApiError::TooManyRequests {
        code: "too_many_connections",
        message: "Too many connections from this address; close some and try again.".to_owned(),
        retry_after_secs: REFUSED_RETRY_AFTER.as_secs(),
    };
    let body = error.body();
    let mut answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: {}\r\nconnection: close\r\n\r\n",
        body.len(),
        REFUSED_RETRY_AFTER.as_secs()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    let _ = tokio::time::timeout(REFUSAL_WRITE, io.write_all(&answer)).await;
    let _ = tokio::time::timeout(REFUSAL_WRITE, io.shutdown()).await;
}

/// One of actix-http's own answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Canned {
    Malformed,
    HeadTimeout,
    HeadTooLarge,
}

impl Canned {
    fn error(self, head_timeout: Duration) -> ApiError {
        match self {
            Canned::Malformed => ApiError::MalformedRequest,
            Canned::HeadTimeout => ApiError::RequestTimeout {
                part: "head",
                secs: head_timeout.as_secs(),
            },
            Canned::HeadTooLarge => ApiError::HeadersTooLarge {
                limit: crate::routes::middleware::MAX_HEADER_BYTES,
            },
        }
    }
}

/// `buf` with actix-http's bodiless answer at its start given the error
/// shape, or `None` when it starts with anything else.
fn rewritten(buf: &[u8], head_timeout: Duration) -> Option<Vec<u8>> {
    let status = buf
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| buf.strip_prefix(b"HTTP/1.0 "))?;
    let kind = CANNED
        .iter()
        .find(|(code, _)| status.starts_with(code))
        .map(|(_, kind)| *kind)?;
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = &buf[..head_end];
    let status_line_end = head.windows(2).position(|w| w == b"\r\n")? + 2;
    let fields = &head[status_line_end..head_end - 2];
    let mut empty = false;
    let mut kept = Vec::with_capacity(fields.len());
    for field in fields.split_inclusive(|b| *b == b'\n') {
        if field.eq_ignore_ascii_case(b"content-length: 0\r\n") {
            empty = true;
        } else if field.len() > 13 && field[..13].eq_ignore_ascii_case(b"content-type:") {
            // A typed answer is not one of actix-http's bare ones.
            return None;
        } else {
            kept.extend_from_slice(field);
        }
    }
    if !empty {
        return None;
    }
    let body = kind.error(head_timeout).body();
    let mut out = Vec::with_capacity(buf.len() + body.len() + 128);
    out.extend_from_slice(&head[..status_line_end]);
    out.extend_from_slice(b"content-type: application/json\r\n");
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(b"x-content-type-options: nosniff\r\ncache-control: no-store\r\n");
    out.extend_from_slice(&kept);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    out.extend_from_slice(&buf[head_end..]);
    Some(out)
}

/// An admitted connection: the socket, the client's slot, and the rewritten
/// bytes still to be written.
#[derive(Debug)]
pub struct Conn {
    io: TcpStream,
    _slot: Slot,
    head_timeout: Duration,
    pending: Vec<u8>,
    pending_from: usize,
}

impl Conn {
    pub fn new(io: TcpStream, slot: Slot, head_timeout: Duration) -> Self {
        Self {
            io,
            _slot: slot,
            head_timeout,
            pending: Vec::new(),
            pending_from: 0,
        }
    }

    /// Writes what a rewrite left over; ready once it is all written.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending_from < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.io).poll_write(cx, &self.pending[self.pending_from..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending_from += n;
        }
        self.pending.clear();
        self.pending_from = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(out) = rewritten(buf, this.head_timeout) {
            // Taken whole: the caller's bytes are accounted for, and what is
            // not written yet goes out before anything else.
            this.pending = out;
            if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_secs(5);

    #[test]
    fn limits_leave_descriptors_free_and_share_them_among_clients() {
        assert_eq!(
            Limits::sized(1024, None, None).unwrap(),
            Limits {
                total: 768,
                per_client: 96
            }
        );
        assert_eq!(
            Limits::sized(1 << 20, None, None).unwrap(),
            Limits {
                total: DEFAULT_MAX_CONNECTIONS,
                per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT
            }
        );
        assert_eq!(
            Limits::sized(100, None, None).unwrap().total,
            MIN_CONNECTIONS
        );
        assert_eq!(
            Limits::sized(4096, Some(1000), Some(10)).unwrap(),
            Limits {
                total: 1000,
                per_client: 10
            }
        );
        assert!(matches!(
            Limits::sized(1024, Some(1000), None),
            Err(LimitsError::AboveFdLimit { most: 768, .. })
        ));
        assert!(matches!(
            Limits::sized(4096, Some(100), Some(101)),
            Err(LimitsError::PerClientAboveTotal { .. })
        ));
    }

    #[test]
    fn a_client_gets_its_share_of_connections_and_each_closed_one_back() {
        let gate = Gate::new(2, vec!["10.0.0.0/8".parse().unwrap()]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let first = gate.admit(a).unwrap();
        let _second = gate.admit(a).unwrap();
        assert!(gate.admit(a).is_none());
        assert!(
            gate.admit("192.0.2.2".parse().unwrap()).is_some(),
            "another address has its own share"
        );
        drop(first);
        assert_eq!(gate.held_by(a), 1);
        assert!(gate.admit(a).is_some());
        // A trusted proxy carries many clients: it is not counted.
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let held: Vec<Slot> = (0..10).map(|_| gate.admit(proxy).unwrap()).collect();
        assert_eq!(held.len(), 10);
        assert_eq!(gate.held_by(proxy), 0);
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let gate = Gate::new(1, vec![]);
        let _one = gate.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(
            gate.admit("2001:db8:1:2:ffff::9".parse().unwrap())
                .is_none()
        );
        assert!(gate.admit("2001:db8:1:3::1".parse().unwrap()).is_some());
        let _v4 = gate.admit("192.0.2.7".parse().unwrap()).unwrap();
        assert!(gate.admit("::ffff:192.0.2.7".parse().unwrap()).is_none());
    }

    #[test]
    fn actix_https_bare_answers_get_the_error_shape_and_others_pass_unchanged() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Tue, 01 Dec 2026 12:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewritten(bare, HEAD).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("content-type: application/json"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("connection: close") && head.contains("date: "));
        assert!(!head.contains("content-length: 0"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "malformed_request");

        let large = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        let out = String::from_utf8(rewritten(large, HEAD).unwrap()).unwrap();
        assert!(out.contains("\"headers_too_large\""), "{out}");
        let slow = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n";
        assert!(
            String::from_utf8(rewritten(slow, HEAD).unwrap())
                .unwrap()
                .contains("\"request_timeout\"")
        );

        for untouched in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 61\r\ncontent-type: application/json\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n",
            b"{\"error\": \"HTTP/1.1 400 \"}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"",
        ] {
            assert!(rewritten(untouched, HEAD).is_none(), "{untouched:?}");
        }
    }
}
