//! Flags, the TOML config file (same keys as the flags) and the merged
//! configuration the server runs with. Flags win over the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::Parser;
use serde::Deserialize;

use crate::rate_limit::RateLimit;
use crate::responder::Rfc5780;

/// Default sustained rate per source IP (or IPv6 /64). A browser sends a
/// handful of Binding requests per second while gathering and one per 10 s
/// after; a carrier NAT can put thousands of users behind one address, so
/// the default sits far above any real address's traffic.
pub const DEFAULT_RATE: f64 = 2000.0;
/// Default socket buffer request per socket.
pub const DEFAULT_SOCKET_BUFFER: usize = 4 << 20;

const AFTER_HELP: &str = "\
EXAMPLES:
  stun-server                                   serve 0.0.0.0:3478 and [::]:3478
  stun-server --listen 203.0.113.5:3478 --alternate 203.0.113.6:3479
                                                RFC 5780 NAT-behaviour discovery
  stun-server --http 127.0.0.1:9478             Prometheus /metrics and /healthz
  stun-server --config /etc/stun-server.toml    keys as the flags, flags win

SIGNALING: --http also serves /v1/rooms/NAME/{join,messages,peers/ID}, where two peers meet and relay JSON (README).

CONFIG FILE (TOML):
  listen = [\"0.0.0.0:3478\", \"[::]:3478\"]
  alternate = \"203.0.113.6:3479\"
  software = \"example\"
  legacy = false
  rate-limit = 2000        # or \"off\"
  rate-burst = 4000
  workers = 4
  http = \"127.0.0.1:9478\"
  socket-buffer = \"4M\"

EXIT CODES:
  0  stopped cleanly (SIGINT/SIGTERM)
  1  could not serve (address in use, permission denied, socket failure)
  2  bad flags or config file

LOGS: RUST_LOG=info (default), debug, trace, or per-module filters.";

/// Command-line flags. Every flag is optional so that the config file can
/// supply it; defaults are applied after merging.
#[derive(Debug, Parser, Default)]
#[command(
    name = "stun-server",
    version,
    about = "A fast, hardened STUN server (RFC 8489 Binding, RFC 5780 NAT behaviour discovery)",
    after_help = AFTER_HELP
)]
pub struct Args {
    /// UDP address to serve, repeatable; replaces the defaults 0.0.0.0:3478 and [::]:3478.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,

    /// Second IP and port for RFC 5780: serves (primary IP, alternate IP) x
    /// (primary port, alternate port). The primary is the single --listen address.
    #[arg(long, value_name = "IP:PORT")]
    pub alternate: Option<SocketAddr>,

    /// Add a SOFTWARE attribute with NAME to every success response (off by default: it only adds bytes).
    #[arg(long, value_name = "NAME")]
    pub software: Option<String>,

    /// Answer RFC 3489 requests (no magic cookie) and add MAPPED-ADDRESS to every success.
    #[arg(long)]
    pub legacy: bool,

    /// Requests per second allowed per source IP (IPv6: per /64), or "off". Default 2000.
    #[arg(long, value_name = "PER_SECOND|off")]
    pub rate_limit: Option<RateSetting>,

    /// Requests a source may send at once before the rate applies. Default: twice the rate.
    #[arg(long, value_name = "N")]
    pub rate_burst: Option<u32>,

    /// Worker threads (sockets) per listening address. Default: number of CPU cores.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// Serve Prometheus /metrics, /healthz and the /v1/rooms signaling rendezvous over HTTP on this address.
    #[arg(long, value_name = "ADDR:PORT")]
    pub http: Option<SocketAddr>,

    /// Receive and send buffer to ask for per socket, e.g. 4M. Default 4M.
    #[arg(long, value_name = "BYTES")]
    pub socket_buffer: Option<ByteSize>,

    /// TOML file with the same keys as the flags; flags given here win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `--rate-limit`: a number or `off`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateSetting {
    Off,
    PerSecond(f64),
}

impl FromStr for RateSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(RateSetting::Off);
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 1.0 => Ok(RateSetting::PerSecond(v)),
            _ => Err(format!(
                "'{s}' is not a rate: give requests per second (at least 1) or 'off'"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for RateSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(f64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => n.to_string().parse().map_err(serde::de::Error::custom),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A byte count with an optional K/M/G suffix (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ByteSize(pub usize);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
            Some('K') => (&t[..t.len() - 1], 1usize << 10),
            Some('M') => (&t[..t.len() - 1], 1 << 20),
            Some('G') => (&t[..t.len() - 1], 1 << 30),
            _ => (t, 1),
        };
        num.trim()
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .filter(|n| *n > 0)
            .map(ByteSize)
            .ok_or_else(|| format!("'{s}' is not a byte size (e.g. 4194304, 512K, 4M)"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => n.to_string().parse().map_err(serde::de::Error::custom),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// The config file: the flags' names as keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub listen: Option<Vec<SocketAddr>>,
    pub alternate: Option<SocketAddr>,
    pub software: Option<String>,
    pub legacy: Option<bool>,
    pub rate_limit: Option<RateSetting>,
    pub rate_burst: Option<u32>,
    pub workers: Option<usize>,
    pub http: Option<SocketAddr>,
    pub socket_buffer: Option<ByteSize>,
}

/// A configuration problem, naming what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// What the server runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// UDP addresses to serve (for RFC 5780, the four combinations).
    pub listen: Vec<SocketAddr>,
    /// True when `listen` is the built-in default: an address family the
    /// host lacks (no IPv6) is then skipped with a warning, not fatal.
    pub listen_is_default: bool,
    pub rfc5780: Option<Rfc5780>,
    pub software: Option<String>,
    pub legacy: bool,
    pub rate_limit: Option<RateLimit>,
    pub workers: usize,
    pub http: Option<SocketAddr>,
    pub socket_buffer: usize,
}

impl ServerConfig {
    /// Merges flags over the config file (if any) over the defaults.
    pub fn from_args(args: Args) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(p) => load_file(p)?,
            None => FileConfig::default(),
        };
        Self::merge(args, file)
    }

    pub fn merge(args: Args, file: FileConfig) -> Result<Self, ConfigError> {
        let listen_is_default = args.listen.is_empty() && file.listen.is_none();
        let listen = if !args.listen.is_empty() {
            args.listen
        } else {
            file.listen.unwrap_or_else(|| {
                vec![
                    "0.0.0.0:3478".parse().expect("literal"),
                    "[::]:3478".parse().expect("literal"),
                ]
            })
        };
        if listen.is_empty() {
            return Err(ConfigError::Invalid(
                "listen is empty: give at least one ADDR:PORT".into(),
            ));
        }
        let alternate = args.alternate.or(file.alternate);
        let rfc5780 = match alternate {
            None => None,
            Some(alt) => {
                let [primary] = listen[..] else {
                    return Err(ConfigError::Invalid(format!(
                        "--alternate {alt} needs exactly one --listen address to pair with (the primary), got {}",
                        listen.len()
                    )));
                };
                if primary.ip().is_unspecified() || alt.ip().is_unspecified() {
                    return Err(ConfigError::Invalid(format!(
                        "--alternate needs specific IPs: RFC 5780 answers name the address they leave from (got --listen {primary} --alternate {alt})"
                    )));
                }
                if primary.is_ipv4() != alt.is_ipv4() {
                    return Err(ConfigError::Invalid(format!(
                        "--listen {primary} and --alternate {alt} must be the same IP family"
                    )));
                }
                if primary.ip() == alt.ip() {
                    return Err(ConfigError::Invalid(format!(
                        "--alternate {alt} must use a different IP from --listen {primary}"
                    )));
                }
                if primary.port() == alt.port() && primary.port() != 0 {
                    return Err(ConfigError::Invalid(format!(
                        "--alternate {alt} must use a different port from --listen {primary}"
                    )));
                }
                Some(Rfc5780 {
                    primary,
                    alternate: alt,
                })
            }
        };
        let rate_limit = match args.rate_limit.or(file.rate_limit) {
            Some(RateSetting::Off) => None,
            Some(RateSetting::PerSecond(r)) => Some(r),
            None => Some(DEFAULT_RATE),
        }
        .map(|per_second| {
            let burst = args
                .rate_burst
                .or(file.rate_burst)
                .map(|b| b as f64)
                .unwrap_or(per_second * 2.0)
                .max(1.0);
            RateLimit { per_second, burst }
        });
        let workers = args.workers.or(file.workers).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        if workers == 0 || workers > 1024 {
            return Err(ConfigError::Invalid(format!(
                "workers must be from 1 to 1024, got {workers}"
            )));
        }
        let software = args.software.or(file.software);
        if let Some(s) = &software {
            // RFC 8489: fewer than 128 characters.
            if s.chars().count() >= 128 {
                return Err(ConfigError::Invalid(
                    "software must be fewer than 128 characters".into(),
                ));
            }
        }
        Ok(ServerConfig {
            listen: match &rfc5780 {
                Some(r) => r.addresses().to_vec(),
                None => listen,
            },
            listen_is_default,
            rfc5780,
            software,
            legacy: args.legacy || file.legacy.unwrap_or(false),
            rate_limit,
            workers,
            http: args.http.or(file.http),
            socket_buffer: args
                .socket_buffer
                .or(file.socket_buffer)
                .map(|b| b.0)
                .unwrap_or(DEFAULT_SOCKET_BUFFER),
        })
    }
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.message().trim().replace('\n', "; ")
            + &e.span()
                .map(|s| {
                    let line = text[..s.start].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("stun-server").chain(v.iter().copied())).unwrap()
    }

    #[test]
    fn defaults() {
        let c = ServerConfig::merge(args(&[]), FileConfig::default()).unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.listen[0].to_string(), "0.0.0.0:3478");
        assert_eq!(c.listen[1].to_string(), "[::]:3478");
        assert_eq!(c.rate_limit.unwrap().per_second, DEFAULT_RATE);
        assert_eq!(c.rate_limit.unwrap().burst, DEFAULT_RATE * 2.0);
        assert!(c.rfc5780.is_none());
    }

    #[test]
    fn flags_win_over_file() {
        let file: FileConfig = toml::from_str(
            "listen = [\"127.0.0.1:4000\"]\nsoftware = \"file\"\nrate-limit = \"off\"\nworkers = 3\nsocket-buffer = \"1M\"",
        )
        .unwrap();
        let c =
            ServerConfig::merge(args(&["--software", "flag", "--rate-limit", "50"]), file).unwrap();
        assert_eq!(c.listen, vec!["127.0.0.1:4000".parse().unwrap()]);
        assert_eq!(c.software.as_deref(), Some("flag"));
        assert_eq!(c.rate_limit.unwrap().per_second, 50.0);
        assert_eq!(c.workers, 3);
        assert_eq!(c.socket_buffer, 1 << 20);
    }

    #[test]
    fn rfc5780_needs_specific_pair() {
        let err = |v: &[&str]| {
            ServerConfig::merge(args(v), FileConfig::default())
                .unwrap_err()
                .to_string()
        };
        assert!(err(&["--alternate", "127.0.0.2:3479"]).contains("exactly one --listen"));
        assert!(
            err(&["--listen", "0.0.0.0:3478", "--alternate", "127.0.0.2:3479"])
                .contains("specific IPs")
        );
        assert!(err(&[
            "--listen",
            "127.0.0.1:3478",
            "--alternate",
            "127.0.0.1:3479"
        ])
        .contains("different IP"));
        let c = ServerConfig::merge(
            args(&[
                "--listen",
                "127.0.0.1:3478",
                "--alternate",
                "127.0.0.2:3479",
            ]),
            FileConfig::default(),
        )
        .unwrap();
        assert_eq!(c.listen.len(), 4);
    }

    #[test]
    fn shipped_config_file_parses() {
        let file: FileConfig = toml::from_str(include_str!("../../dist/stun-server.toml")).unwrap();
        let c = ServerConfig::merge(args(&[]), file).unwrap();
        assert_eq!(c.listen.len(), 2);
        assert!(c.http.is_some());
    }

    #[test]
    fn bad_values_name_the_problem() {
        assert!(Args::try_parse_from(["s", "--rate-limit", "fast"])
            .unwrap_err()
            .to_string()
            .contains("'fast' is not a rate"));
        assert!(toml::from_str::<FileConfig>("bogus = 1")
            .unwrap_err()
            .to_string()
            .contains("bogus"));
    }
}
