//! The signaling wire format, one JSON object per line (sans-IO):
//!
//! ```text
//! {"type":"ice-description","version":1,"ufrag":"..","pwd":"..","candidates":["candidate:.."],"end_of_candidates":true}
//! {"type":"candidate","candidate":"candidate:.."}
//! {"type":"end-of-candidates"}
//! ```
//!
//! A candidate is the RFC 8839 attribute value with its `candidate:`
//! prefix (what `RTCIceCandidate.candidate` holds); readers also accept it
//! without the prefix and ignore unknown fields and unknown `signal.*`
//! control events of the rendezvous.

use serde_json::{json, Map, Value};

use super::exchange::Role;

/// The only description version this build writes and reads.
pub const DESCRIPTION_VERSION: u64 = 1;

/// One signaling message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalMessage {
    /// A peer's credentials and the candidates it has so far.
    Description {
        ufrag: String,
        pwd: String,
        /// Without the `candidate:` prefix (the form webrtc-ice parses).
        candidates: Vec<String>,
        end_of_candidates: bool,
        /// The role this peer was told to take (`--role` or the
        /// rendezvous), so the other side takes the opposite one. An
        /// optional field of version 1: absent when the peer was not told.
        role: Option<Role>,
    },
    /// One trickled candidate (without the prefix).
    Candidate(String),
    EndOfCandidates,
    /// A message we do not act on (rendezvous control events like
    /// `signal.peer-joined`, other applications' types).
    Ignored(String),
}

/// Why a line is not a usable message: the peer sent garbage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadMessage(pub String);

/// `candidate:...` with the prefix added when missing.
pub fn with_prefix(c: &str) -> String {
    let c = c.trim();
    if c.starts_with("candidate:") {
        c.to_string()
    } else {
        format!("candidate:{c}")
    }
}

/// The candidate without a leading `candidate:` or `a=candidate:`.
pub fn without_prefix(c: &str) -> &str {
    let c = c.trim();
    let c = c.strip_prefix("a=").unwrap_or(c);
    c.strip_prefix("candidate:").unwrap_or(c)
}

impl SignalMessage {
    /// The message as one JSON line (no trailing newline).
    pub fn to_line(&self) -> String {
        #[derive(serde::Serialize)]
        struct Desc<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            version: u64,
            ufrag: &'a str,
            pwd: &'a str,
            candidates: Vec<String>,
            end_of_candidates: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            role: Option<&'static str>,
        }
        match self {
            SignalMessage::Description {
                ufrag,
                pwd,
                candidates,
                end_of_candidates,
                role,
            } => serde_json::to_string(&Desc {
                kind: "ice-description",
                version: DESCRIPTION_VERSION,
                ufrag,
                pwd,
                candidates: candidates.iter().map(|c| with_prefix(c)).collect(),
                end_of_candidates: *end_of_candidates,
                role: role.map(Role::as_str),
            })
            .expect("serializes"),
            SignalMessage::Candidate(c) => {
                json!({"type": "candidate", "candidate": with_prefix(c)}).to_string()
            }
            SignalMessage::EndOfCandidates => json!({"type": "end-of-candidates"}).to_string(),
            SignalMessage::Ignored(t) => json!({ "type": t }).to_string(),
        }
    }

    /// As a JSON value (keys sorted; [`to_line`](Self::to_line) keeps
    /// `type` first for people reading the files).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.to_line()).expect("our own JSON parses")
    }

    /// Parses one line (surrounding whitespace ignored).
    pub fn parse_line(line: &str) -> Result<SignalMessage, BadMessage> {
        let v: Value = serde_json::from_str(line.trim()).map_err(|e| {
            BadMessage(format!(
                "not JSON ({e}): {:?}; expected one JSON object per line like \
                 {{\"type\":\"ice-description\",...}}",
                clip(line)
            ))
        })?;
        Self::from_value(&v)
    }

    /// Interprets one JSON value.
    pub fn from_value(v: &Value) -> Result<SignalMessage, BadMessage> {
        let obj = v.as_object().ok_or_else(|| {
            BadMessage(format!(
                "expected a JSON object, got {}",
                clip(&v.to_string())
            ))
        })?;
        let ty = obj.get("type").and_then(Value::as_str).ok_or_else(|| {
            BadMessage(format!(
                "message without a \"type\" string: {}",
                clip(&v.to_string())
            ))
        })?;
        match ty {
            "ice-description" => parse_description(obj),
            "candidate" => {
                let c = str_field(obj, "candidate")?;
                if without_prefix(c).is_empty() {
                    // Browsers signal the end of candidates this way.
                    return Ok(SignalMessage::EndOfCandidates);
                }
                check_candidate(c)?;
                Ok(SignalMessage::Candidate(without_prefix(c).to_string()))
            }
            "end-of-candidates" => Ok(SignalMessage::EndOfCandidates),
            other => Ok(SignalMessage::Ignored(other.to_string())),
        }
    }
}

fn parse_description(obj: &Map<String, Value>) -> Result<SignalMessage, BadMessage> {
    match obj.get("version").and_then(Value::as_u64) {
        Some(DESCRIPTION_VERSION) => {}
        Some(v) => {
            return Err(BadMessage(format!(
                "ice-description version {v} is not supported (this build reads version {DESCRIPTION_VERSION})"
            )))
        }
        None => return Err(BadMessage("ice-description without a numeric \"version\"".into())),
    }
    let ufrag = str_field(obj, "ufrag")?;
    let pwd = str_field(obj, "pwd")?;
    // RFC 8839 5.4: ufrag at least 4 characters, pwd at least 22.
    if ufrag.len() < 4 || pwd.len() < 22 {
        return Err(BadMessage(format!(
            "ice-description ufrag/pwd too short (ufrag {} chars, pwd {} chars; RFC 8839 needs 4 and 22)",
            ufrag.len(),
            pwd.len()
        )));
    }
    let mut candidates = Vec::new();
    match obj.get("candidates") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for c in a {
                let c = c.as_str().ok_or_else(|| {
                    BadMessage(format!(
                        "ice-description candidates must be strings, got {c}"
                    ))
                })?;
                check_candidate(c)?;
                candidates.push(without_prefix(c).to_string());
            }
        }
        Some(other) => {
            return Err(BadMessage(format!(
                "ice-description \"candidates\" must be an array, got {}",
                clip(&other.to_string())
            )))
        }
    }
    let end_of_candidates = obj
        .get("end_of_candidates")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let role = match obj.get("role") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) => Some(Role::parse(r).ok_or_else(|| {
            BadMessage(format!(
                "ice-description role {r:?}: expected \"offer\" or \"answer\""
            ))
        })?),
        Some(other) => {
            return Err(BadMessage(format!(
                "ice-description \"role\" must be a string, got {other}"
            )))
        }
    };
    Ok(SignalMessage::Description {
        ufrag: ufrag.to_string(),
        pwd: pwd.to_string(),
        candidates,
        end_of_candidates,
        role,
    })
}

fn str_field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, BadMessage> {
    obj.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| BadMessage(format!("message without a \"{name}\" string")))
}

/// Cheap structural check (RFC 8839 candidate-attribute: foundation,
/// component, transport, priority, address, port, "typ", type).
fn check_candidate(c: &str) -> Result<(), BadMessage> {
    let f: Vec<&str> = without_prefix(c).split_whitespace().collect();
    let ok = f.len() >= 8
        && f[1].parse::<u16>().is_ok()
        && f[3].parse::<u32>().is_ok()
        && f[5].parse::<u16>().is_ok()
        && f[6] == "typ";
    if ok {
        Ok(())
    } else {
        Err(BadMessage(format!(
            "malformed candidate {:?} (RFC 8839: \"candidate:FOUNDATION COMPONENT udp PRIORITY ADDRESS PORT typ TYPE\")",
            clip(c)
        )))
    }
}

fn clip(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 80 {
        format!("{}...", s.chars().take(80).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host";
    const PWD: &str = "abcdefghijklmnopqrstuvwx";

    #[test]
    fn description_round_trips_with_prefix_on_the_wire() {
        let m = SignalMessage::Description {
            ufrag: "uFrg".into(),
            pwd: PWD.into(),
            candidates: vec![without_prefix(C).into()],
            end_of_candidates: true,
            role: None,
        };
        let line = m.to_line();
        assert!(
            line.contains("\"candidates\":[\"candidate:1 1 udp"),
            "{line}"
        );
        assert!(
            line.starts_with("{\"type\":\"ice-description\",\"version\":1,"),
            "{line}"
        );
        assert!(line.contains("\"version\":1"));
        assert_eq!(SignalMessage::parse_line(&line).unwrap(), m);
        assert!(!line.contains("role"), "{line}");
        if let SignalMessage::Description {
            ufrag,
            pwd,
            candidates,
            end_of_candidates,
            ..
        } = m
        {
            let m = SignalMessage::Description {
                ufrag,
                pwd,
                candidates,
                end_of_candidates,
                role: Some(Role::Answer),
            };
            let line = m.to_line();
            assert!(line.contains(r#""role":"answer""#), "{line}");
            assert_eq!(SignalMessage::parse_line(&line).unwrap(), m);
        }
    }

    #[test]
    fn accepts_candidates_without_prefix_and_unknown_fields() {
        let line = format!(
            r#"{{"type":"ice-description","version":1,"ufrag":"uFrg","pwd":"{PWD}","candidates":["1 1 udp 2130706431 127.0.0.1 50000 typ host"],"extra":{{"a":1}}}}"#
        );
        match SignalMessage::parse_line(&line).unwrap() {
            SignalMessage::Description {
                candidates,
                end_of_candidates,
                ..
            } => {
                assert_eq!(candidates, vec![without_prefix(C).to_string()]);
                assert!(!end_of_candidates);
            }
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn trickle_messages() {
        let c = SignalMessage::parse_line(&format!(
            r#"{{"type":"candidate","candidate":"{C}","sdpMid":"0"}}"#
        ))
        .unwrap();
        assert_eq!(c, SignalMessage::Candidate(without_prefix(C).into()));
        assert_eq!(
            SignalMessage::parse_line(&c.to_line()).unwrap(),
            c,
            "written with the prefix, read back"
        );
        assert_eq!(
            SignalMessage::parse_line(r#"{"type":"end-of-candidates"}"#).unwrap(),
            SignalMessage::EndOfCandidates
        );
        assert_eq!(
            SignalMessage::parse_line(r#"{"type":"candidate","candidate":""}"#).unwrap(),
            SignalMessage::EndOfCandidates
        );
        assert_eq!(
            SignalMessage::parse_line(r#"{"type":"signal.peer-joined","peer":"x"}"#).unwrap(),
            SignalMessage::Ignored("signal.peer-joined".into())
        );
    }

    #[test]
    fn garbage_is_rejected_with_the_reason() {
        for (line, want) in [
            ("hello", "not JSON"),
            ("[1,2]", "expected a JSON object"),
            (r#"{"ufrag":"x"}"#, "without a \"type\""),
            (r#"{"type":"ice-description","version":2}"#, "version 2"),
            (
                r#"{"type":"ice-description","version":1,"ufrag":"a","pwd":"b"}"#,
                "too short",
            ),
            (
                r#"{"type":"candidate","candidate":"candidate:garbage"}"#,
                "malformed candidate",
            ),
        ] {
            let e = SignalMessage::parse_line(line).unwrap_err();
            assert!(e.0.contains(want), "{line}: {e}");
        }
    }
}
