//! STUN client transactions: the sans-IO state machine and a small tokio
//! driver that runs many of them on one socket.

mod driver;
mod transaction;

pub use driver::run_on_socket;
pub use transaction::{Outcome, Transaction, DEFAULT_RTO, LAST_WAIT_RTO, MAX_SENDS};

/// A fresh random transaction ID.
pub fn new_transaction_id() -> [u8; 12] {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut id = [0u8; 12];
    for chunk in id.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        );
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    id
}
