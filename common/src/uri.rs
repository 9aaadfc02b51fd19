//! `stun:`/`stuns:` (RFC 7064) and `turn:`/`turns:` (RFC 7065) URIs.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// URI scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Stun,
    Stuns,
    Turn,
    Turns,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Stun => "stun",
            Scheme::Stuns => "stuns",
            Scheme::Turn => "turn",
            Scheme::Turns => "turns",
        }
    }
    /// 3478 for plain, 5349 for TLS/DTLS (RFC 7064, RFC 7065).
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Stun | Scheme::Turn => 3478,
            Scheme::Stuns | Scheme::Turns => 5349,
        }
    }
    pub fn is_turn(self) -> bool {
        matches!(self, Scheme::Turn | Scheme::Turns)
    }
}

/// `?transport=` of a TURN URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Host part: an IP literal or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// A parsed STUN or TURN URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IceUri {
    pub scheme: Scheme,
    pub host: Host,
    /// The port written in the URI, if any.
    pub explicit_port: Option<u16>,
    /// `?transport=`, only on TURN URIs.
    pub transport: Option<Transport>,
}

impl IceUri {
    /// The port to use: explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.explicit_port
            .unwrap_or_else(|| self.scheme.default_port())
    }
}

impl fmt::Display for IceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme.as_str(), self.host)?;
        if let Some(p) = self.explicit_port {
            write!(f, ":{p}")?;
        }
        match self.transport {
            Some(Transport::Udp) => f.write_str("?transport=udp"),
            Some(Transport::Tcp) => f.write_str("?transport=tcp"),
            None => Ok(()),
        }
    }
}

/// Why a URI was rejected; the message names the input and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("'{0}': unknown scheme, expected stun:, stuns:, turn: or turns: (e.g. stun:198.51.100.7:3478)")]
    Scheme(String),
    #[error("'{0}': STUN/TURN URIs have no '//' (RFC 7064): write it as {1}")]
    Slashes(String, String),
    #[error("'{0}': no host after the scheme (e.g. stun:198.51.100.7:3478)")]
    NoHost(String),
    #[error("'{0}': bad IPv6 literal (write it in brackets, e.g. stun:[2001:db8::1]:3478)")]
    Ipv6(String),
    #[error("'{0}': port '{1}' is not a number from 1 to 65535")]
    Port(String, String),
    #[error("'{0}': host '{1}' is not a valid IP address or DNS name")]
    HostName(String, String),
    #[error("'{0}': '?{1}' is not allowed here (only turn:/turns: take ?transport=udp|tcp)")]
    Query(String, String),
    #[error("'{0}': transport '{1}' is not supported (use udp or tcp)")]
    TransportValue(String, String),
}

impl FromStr for IceUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        let orig = s.trim();
        let (scheme, rest) = orig
            .split_once(':')
            .ok_or_else(|| UriError::Scheme(orig.to_string()))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "stun" => Scheme::Stun,
            "stuns" => Scheme::Stuns,
            "turn" => Scheme::Turn,
            "turns" => Scheme::Turns,
            _ => return Err(UriError::Scheme(orig.to_string())),
        };
        if let Some(stripped) = rest.strip_prefix("//") {
            let fixed = format!("{}:{}", scheme.as_str(), stripped.trim_end_matches('/'));
            return Err(UriError::Slashes(orig.to_string(), fixed));
        }
        let (hostport, query) = match rest.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        let transport = match query {
            None => None,
            Some(q) if scheme.is_turn() => {
                let v = q
                    .strip_prefix("transport=")
                    .ok_or_else(|| UriError::Query(orig.to_string(), q.to_string()))?;
                match v.to_ascii_lowercase().as_str() {
                    "udp" => Some(Transport::Udp),
                    "tcp" => Some(Transport::Tcp),
                    _ => return Err(UriError::TransportValue(orig.to_string(), v.to_string())),
                }
            }
            Some(q) => return Err(UriError::Query(orig.to_string(), q.to_string())),
        };
        if hostport.is_empty() {
            return Err(UriError::NoHost(orig.to_string()));
        }
        let (host, port) = if let Some(after) = hostport.strip_prefix('[') {
            let (lit, tail) = after
                .split_once(']')
                .ok_or_else(|| UriError::Ipv6(orig.to_string()))?;
            let ip: std::net::Ipv6Addr =
                lit.parse().map_err(|_| UriError::Ipv6(orig.to_string()))?;
            let port = match tail {
                "" => None,
                t => Some(
                    t.strip_prefix(':')
                        .ok_or_else(|| UriError::Ipv6(orig.to_string()))?,
                ),
            };
            (Host::Ip(IpAddr::V6(ip)), port)
        } else {
            if hostport.matches(':').count() > 1 {
                return Err(UriError::Ipv6(orig.to_string()));
            }
            let (h, p) = match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            };
            if h.is_empty() {
                return Err(UriError::NoHost(orig.to_string()));
            }
            let host = match h.parse::<std::net::Ipv4Addr>() {
                Ok(ip) => Host::Ip(IpAddr::V4(ip)),
                Err(_) if valid_dns_name(h) => Host::Name(h.to_ascii_lowercase()),
                Err(_) => return Err(UriError::HostName(orig.to_string(), h.to_string())),
            };
            (host, p)
        };
        let explicit_port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(UriError::Port(orig.to_string(), p.to_string())),
            },
        };
        Ok(IceUri {
            scheme,
            host,
            explicit_port,
            transport,
        })
    }
}

fn valid_dns_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        // A bare number like "999" is a failed IPv4 literal, not a name.
        && !h.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> IceUri {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_rfc_forms() {
        let u = ok("stun:127.0.0.1:3478");
        assert_eq!(u.scheme, Scheme::Stun);
        assert_eq!(u.port(), 3478);
        assert_eq!(u.to_string(), "stun:127.0.0.1:3478");
        let u = ok("stun:example.org");
        assert_eq!(u.port(), 3478);
        assert_eq!(u.host, Host::Name("example.org".into()));
        assert_eq!(ok("stuns:example.org").port(), 5349);
        let u = ok("turn:[2001:db8::1]:3479?transport=tcp");
        assert_eq!(u.transport, Some(Transport::Tcp));
        assert_eq!(u.port(), 3479);
        assert_eq!(u.to_string(), "turn:[2001:db8::1]:3479?transport=tcp");
        assert_eq!(ok("stun:[::1]").port(), 3478);
    }

    #[test]
    fn rejects_with_reason() {
        for (s, needle) in [
            ("http://x", "unknown scheme"),
            ("stun://1.2.3.4:3478", "no '//'"),
            ("stun:", "no host"),
            ("stun:1.2.3.4:0", "port '0'"),
            ("stun:1.2.3.4:99999", "port '99999'"),
            ("stun:2001:db8::1", "brackets"),
            ("stun:[2001:db8::1", "brackets"),
            ("stun:1.2.3.4?transport=udp", "only turn"),
            ("turn:1.2.3.4?transport=sctp", "sctp"),
            ("stun:bad host", "not a valid"),
            ("stun:999.1.1.1", "not a valid"),
        ] {
            let e = s.parse::<IceUri>().unwrap_err().to_string();
            assert!(e.contains(needle), "{s}: {e}");
        }
    }
}
