//! Seeded fault injection: which admitted request gets which fault is decided by a SmallRng, so
//! the same seed and the same request sequence give the same faults.

use std::sync::Mutex;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A fault the simulator can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// HTTP 500 with a JSON error body.
    InternalError,
    /// HTTP 503 (maintenance).
    Unavailable,
    /// Sleep `slow_ms`, then answer normally.
    Slow,
    /// Close the connection without answering.
    Drop,
    /// HTTP 200 with a truncated JSON body.
    Malformed,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::InternalError => "500",
            Fault::Unavailable => "503",
            Fault::Slow => "slow",
            Fault::Drop => "drop",
            Fault::Malformed => "malformed",
        }
    }
}

const KINDS: [Fault; 5] = [Fault::InternalError, Fault::Unavailable, Fault::Slow, Fault::Drop, Fault::Malformed];

pub(crate) struct FaultPicker {
    rate: f64,
    rng: Mutex<SmallRng>,
}

impl FaultPicker {
    pub fn new(seed: u64, rate: f64) -> Self {
        // A distinct stream from the data seed, so data and faults do not correlate.
        FaultPicker { rate, rng: Mutex::new(SmallRng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15)) }
    }

    /// Draws for one admitted request (always two draws, so the sequence only depends on the
    /// number of admitted requests).
    pub fn draw(&self) -> Option<Fault> {
        if self.rate <= 0.0 {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let hit = rng.random::<f64>() < self.rate;
        let kind = KINDS[rng.random_range(0..KINDS.len())];
        hit.then_some(kind)
    }
}
