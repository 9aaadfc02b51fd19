//! What `stun-server` and `ice-probe` share: the STUN wire format, STUN/TURN
//! URIs and the report types both print.

pub mod bench_report;
pub mod channel_report;
pub mod cli_error;
pub mod connect_report;
pub mod gather_report;
pub mod nat_report;
pub mod role;
pub mod stun;
pub mod uri;
