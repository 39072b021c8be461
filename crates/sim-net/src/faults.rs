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
    /// HTTP 504 from the gateway (an HTML body): the application's outcome is unknown.
    GatewayTimeout,
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
            Fault::GatewayTimeout => "504",
        }
    }

    fn parse(name: &str) -> Option<Fault> {
        Some(match name {
            "500" => Fault::InternalError,
            "503" => Fault::Unavailable,
            "504" => Fault::GatewayTimeout,
            "slow" => Fault::Slow,
            "drop" => Fault::Drop,
            "malformed" => Fault::Malformed,
            _ => return None,
        })
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

/// When a scripted fault strikes, relative to the request's execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    /// Instead of executing the request: nothing changes on the server.
    Before,
    /// After executing (and committing) the request: the change is made, the answer is lost.
    After,
    /// The answer is lost at once and the request is executed `slow_ms` later (a slow commit
    /// that lands after the client gave up).
    Late,
}

/// One rule of a fault script: requests `from..=to` (counted per operation, from 1) of
/// `operation` get `fault` at `moment`. Written `OPERATION:FROM[-[TO]]:[after-|late-]KIND`,
/// for example `users:2-:500` (every `users` request from the second on answers 500) or
/// `groupCreate:1:after-504` (the first `groupCreate` is committed, then answers 504).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptedFault {
    pub operation: String,
    pub from: u64,
    /// Inclusive; `None` for every request from `from` on.
    pub to: Option<u64>,
    pub fault: Fault,
    pub moment: Moment,
}

impl std::str::FromStr for ScriptedFault {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "'{text}' is not a fault rule OPERATION:FROM[-[TO]]:[after-|late-]KIND ({why}); KIND is one of 500, 503, 504, slow, drop, malformed"
            )
        };
        let mut parts = text.rsplitn(3, ':');
        let (kind, range, operation) = match (parts.next(), parts.next(), parts.next()) {
            (Some(k), Some(r), Some(o)) if !o.trim().is_empty() => (k.trim(), r.trim(), o.trim()),
            _ => return Err(bad("three parts separated by ':'")),
        };
        let (moment, kind) = if let Some(k) = kind.strip_prefix("after-") {
            (Moment::After, k)
        } else if let Some(k) = kind.strip_prefix("late-") {
            (Moment::Late, k)
        } else {
            (Moment::Before, kind)
        };
        let fault = Fault::parse(kind).ok_or_else(|| bad("unknown kind"))?;
        if moment == Moment::Late && fault != Fault::GatewayTimeout && fault != Fault::Drop {
            return Err(bad("a late commit answers 504 or drops the connection"));
        }
        let number = |x: &str| x.trim().parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| bad("counts start at 1"));
        let (from, to) = match range.split_once('-') {
            None => {
                let n = number(range)?;
                (n, Some(n))
            }
            Some((f, "")) => (number(f)?, None),
            Some((f, t)) => (number(f)?, Some(number(t)?)),
        };
        if to.is_some_and(|t| t < from) {
            return Err(bad("the range ends before it starts"));
        }
        Ok(ScriptedFault { operation: operation.to_owned(), from, to, fault, moment })
    }
}

/// A scripted fault chosen for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Strike {
    pub fault: Fault,
    pub moment: Moment,
}

/// Deterministic faults for chosen requests of chosen operations (tests of partial failure,
/// unknown outcomes and slow commits), next to the random [`FaultPicker`].
#[derive(Default)]
pub struct FaultScript {
    rules: Vec<ScriptedFault>,
    counts: Mutex<std::collections::HashMap<String, u64>>,
}

impl FaultScript {
    pub fn new(rules: Vec<ScriptedFault>) -> FaultScript {
        FaultScript { rules, counts: Mutex::default() }
    }

    /// Counts one request of each of `operations` and returns the first rule that matches.
    pub fn check<'a>(&self, operations: impl IntoIterator<Item = &'a str>) -> Option<Strike> {
        if self.rules.is_empty() {
            return None;
        }
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut strike = None;
        for op in operations {
            let n = counts.entry(op.to_owned()).or_default();
            *n += 1;
            let hit = self.rules.iter().find(|r| r.operation == op && r.from <= *n && r.to.is_none_or(|t| *n <= t));
            if strike.is_none() {
                strike = hit.map(|r| Strike { fault: r.fault, moment: r.moment });
            }
        }
        strike
    }
}

#[cfg(test)]
mod tests {
    use super::{Fault, FaultPicker, FaultScript, Moment, ScriptedFault};

    #[test]
    fn scripts_parse_and_strike_the_chosen_requests() {
        let r: ScriptedFault = "users:2-:500".parse().unwrap();
        assert_eq!((r.from, r.to, r.fault, r.moment), (2, None, Fault::InternalError, Moment::Before));
        let r: ScriptedFault = "AccountUserRole.create:1-3:after-504".parse().unwrap();
        assert_eq!((r.operation.as_str(), r.to, r.moment), ("AccountUserRole.create", Some(3), Moment::After));
        assert_eq!("g:1:late-drop".parse::<ScriptedFault>().unwrap().moment, Moment::Late);
        for bad in ["users:0:500", "users:1:teapot", "users:3-2:500", ":1:500", "users:500", "g:1:late-500"] {
            assert!(bad.parse::<ScriptedFault>().is_err(), "{bad}");
        }
        let script = FaultScript::new(vec!["users:2-3:drop".parse().unwrap()]);
        let got: Vec<bool> = (0..4).map(|_| script.check(["users"]).is_some()).collect();
        assert_eq!(got, [false, true, true, false]);
        assert_eq!(script.check(["groups"]), None);
    }

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
