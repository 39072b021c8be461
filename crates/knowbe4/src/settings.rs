//! Connection settings: the region table (with overridable hosts), the GraphQL URL, and the
//! pacing limits (KnowBe4's real limits by default, tunable through an environment variable
//! for tests and special accounts).

use std::time::Duration;

use connector_http::{Pacer, Window};

use crate::error::KnowBe4Error;

/// A KnowBe4 region and the base URL of its KSAT GraphQL (and Partner) API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub name: &'static str,
    /// `https://...`; GraphQL is at `<base>/graphql`.
    pub base_url: &'static str,
}

/// The regions and their GraphQL hosts, as every working public GraphQL client uses them (the
/// US console is `training.knowbe4.com`; the others `<region>.knowbe4.com`). Override one with
/// the environment variable `STEPWISE_KNOWBE4_URL_<REGION>` (for example
/// `STEPWISE_KNOWBE4_URL_US=https://us.api.knowbe4.com`) or a connection's `base_url`.
pub const REGIONS: &[Region] = &[
    Region { name: "us", base_url: "https://training.knowbe4.com" },
    Region { name: "ca", base_url: "https://ca.knowbe4.com" },
    Region { name: "eu", base_url: "https://eu.knowbe4.com" },
    Region { name: "uk", base_url: "https://uk.knowbe4.com" },
    Region { name: "de", base_url: "https://de.knowbe4.com" },
];

/// Testing and tuning override of the pacing limits: `PER_SECOND,PER_MINUTE` (for example
/// `10,600`), or `off` for none.
pub const RATE_ENV: &str = "STEPWISE_KNOWBE4_RATE";

/// KnowBe4's documented limits: 4 requests per second and a burst limit of 50 per minute.
pub const DEFAULT_RATE: Rate = Rate { per_second: Some(4), per_minute: Some(50) };

/// Requests allowed per second and per rolling minute (`None` = not limited).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_second: Option<u32>,
    pub per_minute: Option<u32>,
}

impl Rate {
    /// Parses the value of [`RATE_ENV`].
    pub fn parse(text: &str) -> Result<Rate, KnowBe4Error> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("off") || t.eq_ignore_ascii_case("none") {
            return Ok(Rate { per_second: None, per_minute: None });
        }
        let bad = || KnowBe4Error::Setting(format!("{RATE_ENV}='{text}' is not PER_SECOND,PER_MINUTE (or 'off')"));
        let (s, m) = t.split_once(',').ok_or_else(bad)?;
        let num = |x: &str| -> Result<Option<u32>, KnowBe4Error> {
            let x = x.trim();
            if x.eq_ignore_ascii_case("off") {
                return Ok(None);
            }
            match x.parse::<u32>() {
                Ok(0) | Err(_) => Err(bad()),
                Ok(n) => Ok(Some(n)),
            }
        };
        Ok(Rate { per_second: num(s)?, per_minute: num(m)? })
    }

    /// The rate from the environment, or KnowBe4's limits.
    pub fn from_env() -> Result<Rate, KnowBe4Error> {
        match std::env::var(RATE_ENV) {
            Ok(v) if !v.trim().is_empty() => Rate::parse(&v),
            _ => Ok(DEFAULT_RATE),
        }
    }

    /// A pacer that keeps under both windows, spreading each second's budget evenly.
    pub fn pacer(&self) -> Pacer {
        let mut windows = Vec::new();
        if let Some(n) = self.per_second {
            windows.push(Window::per_second(n));
        }
        if let Some(n) = self.per_minute {
            windows.push(Window::per_minute(n));
        }
        let pacer = Pacer::new(windows);
        match self.per_second {
            Some(n) => pacer.with_min_interval(Duration::from_secs(1) / n),
            None => pacer,
        }
    }
}

/// Testing and tuning override of how long a create whose outcome is unknown is looked for
/// (`RetryPolicy::recovery_window`), in seconds.
pub const RECOVERY_ENV: &str = "STEPWISE_KNOWBE4_RECOVERY_SECS";

/// The retry policy of KnowBe4 calls: the defaults, with [`RECOVERY_ENV`] applied.
pub fn retry_policy() -> Result<connector_http::RetryPolicy, KnowBe4Error> {
    let mut policy = connector_http::RetryPolicy::default();
    if let Ok(v) = std::env::var(RECOVERY_ENV)
        && !v.trim().is_empty()
    {
        let secs = v
            .trim()
            .parse::<u64>()
            .map_err(|_| KnowBe4Error::Setting(format!("{RECOVERY_ENV}='{v}' is not a whole number of seconds")))?;
        policy.recovery_window = Duration::from_secs(secs);
    }
    Ok(policy)
}

/// The GraphQL endpoint of a connection: its `base_url` if given, else its region's.
pub fn graphql_url(region: &str, base_url: Option<&str>) -> Result<connector_http::reqwest::Url, KnowBe4Error> {
    let base = match base_url {
        Some(b) => b.to_owned(),
        None => {
            let r = REGIONS.iter().find(|r| r.name == region).ok_or_else(|| {
                let names: Vec<&str> = REGIONS.iter().map(|r| r.name).collect();
                KnowBe4Error::Setting(format!("unknown region '{region}'; known: {}", names.join(", ")))
            })?;
            let env = format!("STEPWISE_KNOWBE4_URL_{}", r.name.to_ascii_uppercase());
            match std::env::var(&env) {
                Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
                _ => r.base_url.to_owned(),
            }
        }
    };
    let trimmed = base.trim_end_matches('/');
    let full = if trimmed.ends_with("/graphql") { trimmed.to_owned() } else { format!("{trimmed}/graphql") };
    connector_http::check_base_url(&full).map_err(|e| KnowBe4Error::Setting(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_have_https_graphql_urls() {
        for r in REGIONS {
            let url = graphql_url(r.name, None).unwrap();
            assert_eq!(url.scheme(), "https");
            assert!(url.path().ends_with("/graphql"));
        }
        assert_eq!(graphql_url("us", None).unwrap().as_str(), "https://training.knowbe4.com/graphql");
        assert_eq!(graphql_url("de", None).unwrap().as_str(), "https://de.knowbe4.com/graphql");
        assert!(graphql_url("mars", None).is_err());
    }

    #[test]
    fn base_url_overrides_the_region() {
        assert_eq!(graphql_url("us", Some("http://127.0.0.1:8787")).unwrap().as_str(), "http://127.0.0.1:8787/graphql");
        assert_eq!(
            graphql_url("eu", Some("http://localhost:1/graphql/")).unwrap().as_str(),
            "http://localhost:1/graphql"
        );
        assert!(graphql_url("us", Some("http://10.0.0.1:8787")).is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(Rate::parse("4,50").unwrap(), DEFAULT_RATE);
        assert_eq!(Rate::parse(" 10 , 600 ").unwrap(), Rate { per_second: Some(10), per_minute: Some(600) });
        assert_eq!(Rate::parse("off").unwrap(), Rate { per_second: None, per_minute: None });
        assert_eq!(Rate::parse("off,30").unwrap(), Rate { per_second: None, per_minute: Some(30) });
        assert!(Rate::parse("4").is_err());
        assert!(Rate::parse("0,5").is_err());
        assert_eq!(DEFAULT_RATE.pacer().windows().len(), 2);
    }
}
