//! Seeded fault injection: which admitted request gets which fault is decided by a `SmallRng`,
//! so the same seed and the same request sequence give the same faults. Each simulator names
//! the kinds it injects and decides what each one answers.

use std::sync::Mutex;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A fault a simulator can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 with the API's error body.
    InternalError,
    /// HTTP 503 with the API's "unavailable" body.
    Unavailable,
    /// Sleep `slow_ms`, then answer normally.
    Slow,
    /// Close the connection without answering.
    Drop,
    /// HTTP 200 with a truncated JSON body.
    Malformed,
}

impl Fault {
    /// The kind's name in stats and logs.
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

/// Draws the fault, if any, of each admitted request.
pub struct FaultPicker {
    rate: f64,
    kinds: &'static [Fault],
    rng: Mutex<SmallRng>,
}

impl FaultPicker {
    /// `rate` is the share of requests that get a fault, drawn uniformly among `kinds` (which
    /// must not be empty when `rate` is above 0).
    pub fn new(seed: u64, rate: f64, kinds: &'static [Fault]) -> Self {
        // A stream distinct from the data seed, so data and faults do not correlate.
        FaultPicker { rate, kinds, rng: Mutex::new(SmallRng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15)) }
    }

    /// Draws for one admitted request (always two draws, so the sequence depends only on the
    /// number of admitted requests).
    pub fn draw(&self) -> Option<Fault> {
        if self.rate <= 0.0 {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let hit = rng.random::<f64>() < self.rate;
        let kind = self.kinds[rng.random_range(0..self.kinds.len())];
        hit.then_some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::{Fault, FaultPicker};

    const KINDS: &[Fault] = &[Fault::InternalError, Fault::Slow];

    #[test]
    fn the_same_seed_draws_the_same_faults_among_the_given_kinds() {
        let draws = |seed| {
            let picker = FaultPicker::new(seed, 0.5, KINDS);
            (0..64).map(|_| picker.draw()).collect::<Vec<_>>()
        };
        let first = draws(7);
        assert_eq!(first, draws(7));
        assert!(first.iter().flatten().all(|f| KINDS.contains(f)));
        assert!(first.iter().any(Option::is_some) && first.iter().any(Option::is_none));
        assert!(FaultPicker::new(7, 0.0, KINDS).draw().is_none());
    }
}
