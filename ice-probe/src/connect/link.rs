//! What every signaling transport gives the peer: a way to send our
//! messages and a stream of the other side's. Files, pipes, the HTTP
//! rendezvous and the in-process selftest all look the same from here.

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use super::description::{BadMessage, SignalMessage};
use super::exchange::Role;

/// One event from the transport.
#[derive(Debug)]
pub enum Incoming {
    Message(SignalMessage),
    /// The peer sent something we cannot use (exit 2).
    Bad(BadMessage),
    /// The transport itself failed: cannot write our description, the
    /// rendezvous is unreachable (exit 3).
    Fatal(String),
    /// The peer's stream ended (file read, stdin EOF).
    Closed,
}

/// Both directions of one peer's signaling.
pub struct Link {
    pub outgoing: UnboundedSender<SignalMessage>,
    pub incoming: UnboundedReceiver<Incoming>,
    /// The role the rendezvous assigned, if it assigns one.
    pub assigned_role: Option<Role>,
    /// The writer task: finishes after `outgoing` is dropped and every
    /// message was delivered.
    pub writer: Option<JoinHandle<()>>,
}

/// Two links wired to each other in memory (selftest).
pub fn pair() -> (Link, Link) {
    let (a_out, b_in_raw) = unbounded_channel::<SignalMessage>();
    let (b_out, a_in_raw) = unbounded_channel::<SignalMessage>();
    let a_in = forward(a_in_raw);
    let b_in = forward(b_in_raw);
    (
        Link {
            outgoing: a_out,
            incoming: a_in,
            assigned_role: Some(Role::Offer),
            writer: None,
        },
        Link {
            outgoing: b_out,
            incoming: b_in,
            assigned_role: Some(Role::Answer),
            writer: None,
        },
    )
}

fn forward(mut rx: UnboundedReceiver<SignalMessage>) -> UnboundedReceiver<Incoming> {
    let (tx, out) = unbounded_channel();
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if tx.send(Incoming::Message(m)).is_err() {
                return;
            }
        }
    });
    out
}
