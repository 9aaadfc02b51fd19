//! The signaling state machine of one peer (sans-IO): what we learned from
//! the other side's messages and what the agent must do with it, and who
//! controls when no one was told.
//!
//! Messages may come in any order a real signaling channel produces:
//! trickled candidates before the description (buffered until the
//! credentials are known), the same description twice (only new
//! candidates are acted on), control events (ignored).

use super::description::{BadMessage, SignalMessage};

/// Who offers: the controlling agent (RFC 8445 6.1.1) nominates.
pub use common::role::Role;

/// Without signaling that assigns roles (files, pipes), both peers decide
/// the same way: the lexicographically smaller ufrag offers.
pub fn elect(local_ufrag: &str, remote_ufrag: &str) -> Result<Role, BadMessage> {
    match local_ufrag.cmp(remote_ufrag) {
        std::cmp::Ordering::Less => Ok(Role::Offer),
        std::cmp::Ordering::Greater => Ok(Role::Answer),
        std::cmp::Ordering::Equal => Err(BadMessage(
            "the peer's ufrag equals ours: it is reading its own description (check --local/--remote)"
                .into(),
        )),
    }
}

/// Our role: the one we were told (`--role`, the rendezvous), else the
/// opposite of the one the peer was told, else the ufrag election. Two
/// peers told the same role would both control (or both wait): an error.
pub fn decide(
    ours: Option<Role>,
    theirs: Option<Role>,
    local_ufrag: &str,
    remote_ufrag: &str,
) -> Result<Role, BadMessage> {
    match (ours, theirs) {
        (Some(a), Some(b)) if a == b => Err(BadMessage(format!(
            "both peers were told to {} (--role {} on both sides?): give one of them --role {}, or neither",
            a.as_str(),
            a.as_str(),
            a.other().as_str()
        ))),
        (Some(a), _) => Ok(a),
        (None, Some(b)) => Ok(b.other()),
        (None, None) => elect(local_ufrag, remote_ufrag),
    }
}

/// What the agent must do after a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The peer's credentials: start connectivity checks.
    Start {
        ufrag: String,
        pwd: String,
        /// The role the peer said it takes, if it was told one.
        role: Option<Role>,
    },
    /// A new remote candidate (without the `candidate:` prefix).
    AddCandidate(String),
    /// The peer has no more candidates.
    RemoteComplete,
}

/// What we know of the peer.
#[derive(Debug, Default)]
pub struct RemotePeer {
    credentials: Option<(String, String)>,
    /// Every candidate seen (acted on or buffered), for deduplication.
    seen: Vec<String>,
    /// Candidates that arrived before the credentials.
    pending: Vec<String>,
    complete: bool,
}

impl RemotePeer {
    pub fn credentials(&self) -> Option<&(String, String)> {
        self.credentials.as_ref()
    }
    pub fn candidates(&self) -> &[String] {
        &self.seen
    }
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// Feeds one message; returns what to do, in order.
    pub fn handle(&mut self, msg: SignalMessage) -> Result<Vec<Action>, BadMessage> {
        let mut out = Vec::new();
        match msg {
            SignalMessage::Description {
                ufrag,
                pwd,
                candidates,
                end_of_candidates,
                role,
            } => {
                match &self.credentials {
                    Some((u, p)) if *u != ufrag || *p != pwd => {
                        return Err(BadMessage(format!(
                            "the peer sent a second description with new credentials (ufrag {u} -> {ufrag}): \
                             ICE restarts are not supported"
                        )))
                    }
                    Some(_) => {}
                    None => {
                        self.credentials = Some((ufrag.clone(), pwd.clone()));
                        out.push(Action::Start { ufrag, pwd, role });
                        out.extend(self.pending.drain(..).map(Action::AddCandidate));
                    }
                }
                for c in candidates {
                    self.candidate(c, &mut out);
                }
                if end_of_candidates {
                    self.end(&mut out);
                }
            }
            SignalMessage::Candidate(c) => self.candidate(c, &mut out),
            SignalMessage::EndOfCandidates => self.end(&mut out),
            SignalMessage::Ignored(_) => {}
        }
        Ok(out)
    }

    fn candidate(&mut self, c: String, out: &mut Vec<Action>) {
        if self.seen.contains(&c) {
            return;
        }
        self.seen.push(c.clone());
        if self.credentials.is_some() {
            out.push(Action::AddCandidate(c));
        } else {
            self.pending.push(c);
        }
    }

    fn end(&mut self, out: &mut Vec<Action>) {
        if !self.complete {
            self.complete = true;
            out.push(Action::RemoteComplete);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PWD: &str = "abcdefghijklmnopqrstuvwx";

    fn desc(cands: &[&str], end: bool) -> SignalMessage {
        SignalMessage::Description {
            ufrag: "uFrg".into(),
            pwd: PWD.into(),
            candidates: cands.iter().map(|c| c.to_string()).collect(),
            end_of_candidates: end,
            role: None,
        }
    }

    #[test]
    fn trickle_before_description_is_buffered() {
        let mut r = RemotePeer::default();
        assert_eq!(
            r.handle(SignalMessage::Candidate("a".into())).unwrap(),
            vec![]
        );
        let acts = r.handle(desc(&["b"], false)).unwrap();
        assert_eq!(
            acts,
            vec![
                Action::Start {
                    ufrag: "uFrg".into(),
                    pwd: PWD.into(),
                    role: None,
                },
                Action::AddCandidate("a".into()),
                Action::AddCandidate("b".into()),
            ]
        );
        assert_eq!(
            r.handle(SignalMessage::EndOfCandidates).unwrap(),
            vec![Action::RemoteComplete]
        );
        assert!(r.complete());
    }

    #[test]
    fn repeated_description_only_adds_new_candidates() {
        let mut r = RemotePeer::default();
        r.handle(desc(&["a"], false)).unwrap();
        assert_eq!(
            r.handle(desc(&["a", "b"], true)).unwrap(),
            vec![Action::AddCandidate("b".into()), Action::RemoteComplete]
        );
        assert_eq!(r.handle(desc(&["a", "b"], true)).unwrap(), vec![]);
        assert_eq!(r.candidates(), ["a", "b"]);
    }

    #[test]
    fn new_credentials_are_an_error() {
        let mut r = RemotePeer::default();
        r.handle(desc(&[], false)).unwrap();
        let e = r
            .handle(SignalMessage::Description {
                ufrag: "othr".into(),
                pwd: PWD.into(),
                candidates: vec![],
                end_of_candidates: false,
                role: None,
            })
            .unwrap_err();
        assert!(e.0.contains("ICE restarts"), "{e}");
    }

    #[test]
    fn roles_told_win_and_a_conflict_is_an_error() {
        use Role::*;
        assert_eq!(decide(Some(Answer), None, "aaaa", "bbbb").unwrap(), Answer);
        assert_eq!(decide(None, Some(Offer), "aaaa", "bbbb").unwrap(), Answer);
        assert_eq!(decide(None, Some(Answer), "bbbb", "aaaa").unwrap(), Offer);
        assert_eq!(decide(Some(Offer), Some(Answer), "a", "b").unwrap(), Offer);
        assert_eq!(decide(None, None, "bbbb", "aaaa").unwrap(), Answer);
        let e = decide(Some(Offer), Some(Offer), "a", "b").unwrap_err();
        assert!(e.0.contains("--role answer"), "{e}");
    }

    #[test]
    fn election_is_symmetric() {
        assert_eq!(elect("aaaa", "bbbb").unwrap(), Role::Offer);
        assert_eq!(elect("bbbb", "aaaa").unwrap(), Role::Answer);
        assert!(elect("aaaa", "aaaa").is_err());
    }
}
