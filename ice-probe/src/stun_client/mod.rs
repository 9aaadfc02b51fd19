//! STUN client transactions: the sans-IO state machine and a small tokio
//! driver that runs many of them on one socket.

mod driver;
mod transaction;

pub use driver::run_on_socket;
pub use transaction::{Outcome, Transaction, DEFAULT_RTO, LAST_WAIT_RTO, MAX_SENDS};

/// A fresh random transaction ID.
pub use common::stun::random_transaction_id as new_transaction_id;
