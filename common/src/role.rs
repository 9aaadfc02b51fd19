//! Who offers in a two-peer exchange, in the words the signaling
//! rendezvous (`stun-server --http`) and ice-probe's descriptions use on
//! the wire: `"offer"` (ICE controlling, RFC 8445 6.1.1: it nominates)
//! and `"answer"` (controlled).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Controlling.
    Offer,
    /// Controlled.
    Answer,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Offer => "offer",
            Role::Answer => "answer",
        }
    }

    /// `"offer"` or `"answer"`, exactly.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "offer" => Some(Role::Offer),
            "answer" => Some(Role::Answer),
            _ => None,
        }
    }

    /// The peer's role.
    pub const fn other(self) -> Role {
        match self {
            Role::Offer => Role::Answer,
            Role::Answer => Role::Offer,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for r in [Role::Offer, Role::Answer] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(r.other().other(), r);
            assert_ne!(r.other(), r);
        }
        assert_eq!(Role::parse("Offer"), None);
        assert_eq!(Role::parse(""), None);
    }
}
