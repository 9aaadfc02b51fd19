//! The errors a user can see, each mapped to a documented exit code.

/// Exit codes shared by every subcommand.
pub mod exit {
    /// The probe ran and succeeded.
    pub const OK: i32 = 0;
    /// It ran and found a failure (nothing reachable, invalid answers...).
    pub const FAILED: i32 = 1;
    /// Bad usage or input.
    pub const USAGE: i32 = 2;
    /// It could not run (no network, cannot open sockets, DNS failure).
    pub const CANNOT_RUN: i32 = 3;
}

/// Why a subcommand could not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Bad flags or input (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The environment does not let it run (exit 3).
    #[error("{0}")]
    CannotRun(String),
}

impl ProbeError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ProbeError::Usage(_) => exit::USAGE,
            ProbeError::CannotRun(_) => exit::CANNOT_RUN,
        }
    }
}
