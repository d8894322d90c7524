//! The client's address. `X-Forwarded-For` is believed only when the request
//! came from a configured trusted proxy, and then only up to the first hop that
//! is not itself a trusted proxy, so a client cannot pick its own address.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// Who is calling, as far as this server can tell.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut client = peer;
    for value in req.headers().get_all("x-forwarded-for").rev() {
        let Ok(value) = value.to_str() else {
            return Some(client);
        };
        for hop in value.rsplit(',') {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                return Some(client);
            };
            client = ip;
            if !is_trusted(&ip) {
                return Some(client);
            }
        }
    }
    Some(client)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn req(peer: &str, xff: Option<&str>) -> HttpRequest {
        let mut r = TestRequest::default().peer_addr(format!("{peer}:5000").parse().unwrap());
        if let Some(x) = xff {
            r = r.insert_header(("X-Forwarded-For", x));
        }
        r.to_http_request()
    }

    #[test]
    fn forwarded_for_is_ignored_from_an_untrusted_peer() {
        let ip = client_ip(&req("203.0.113.9", Some("1.2.3.4")), &[]).unwrap();
        assert_eq!(ip.to_string(), "203.0.113.9");
    }

    #[test]
    fn a_trusted_proxy_passes_on_the_first_untrusted_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = client_ip(
            &req("10.0.0.2", Some("6.6.6.6, 198.51.100.7, 10.0.0.5")),
            &trusted,
        )
        .unwrap();
        assert_eq!(ip.to_string(), "198.51.100.7");
        let junk = client_ip(&req("10.0.0.2", Some("not-an-ip")), &trusted).unwrap();
        assert_eq!(junk.to_string(), "10.0.0.2");
    }
}
