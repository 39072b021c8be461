//! Cron schedules evaluated in an IANA time zone.
//!
//! A [`Schedule`] is a parsed cron expression (five fields, or six with seconds first) plus a
//! time zone. Fire times follow the process format's daylight-saving rule (section 5):
//!
//! * a local time that does not exist (spring forward) fires once, at the first instant after
//!   the gap; several missing local times collapse into that one fire;
//! * a local time that happens twice (fall back) fires once, at its first occurrence.
//!
//! `croner` parses and matches the fields, but it is only ever asked about *wall-clock* times:
//! it runs on a naive local timeline (expressed as UTC, which has no transitions), and this
//! module maps each local candidate onto a real instant with `chrono-tz`. croner's own
//! time-zone handling is not used, because it fires interval jobs (`*/15 * * * *`) twice in a
//! repeated hour, which the format forbids.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, SecondsFormat, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// One schedule of a process, as written in the process file (section 5), in plain types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSpec {
    /// Five fields (minute hour day-of-month month day-of-week) or six with seconds first.
    pub cron: String,
    /// IANA time zone name; an empty string means UTC.
    pub timezone: String,
    /// What to do when a fire comes while a run of the same process is still going.
    pub overlap: Overlap,
    /// What to do with fires missed while the service was down.
    pub catch_up: CatchUp,
    /// A disabled schedule is loaded and validated but never fires.
    pub enabled: bool,
}

impl ScheduleSpec {
    /// Parses the cron expression and time zone.
    pub fn compile(&self) -> Result<Schedule, ScheduleError> {
        Schedule::parse(&self.cron, &self.timezone)
    }
}

/// `overlap`: what a fire does while a run of the same process is in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Overlap {
    /// Do not start; record a `DISCARDED` run (Boomi's "no simultaneous executions").
    #[default]
    Skip,
    /// Keep at most one waiting run; it starts when the running one ends.
    Queue,
    /// Start another run concurrently.
    Allow,
}

/// `catch_up`: what to do with fires missed while the service was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CatchUp {
    /// Skip every missed fire.
    None,
    /// Run the most recent missed fire once.
    #[default]
    Last,
    /// Run every missed fire, oldest first (capped at `scheduler::service::MAX_CATCH_UP`).
    All,
}

impl Overlap {
    /// The name used in process files.
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Allow => "allow",
        }
    }
}

impl CatchUp {
    /// The name used in process files.
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::None => "none",
            CatchUp::Last => "last",
            CatchUp::All => "all",
        }
    }
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CatchUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Overlap {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "skip" => Ok(Overlap::Skip),
            "queue" => Ok(Overlap::Queue),
            "allow" => Ok(Overlap::Allow),
            _ => Err(ScheduleError::UnknownOption {
                option: "overlap",
                value: s.to_owned(),
                expected: "skip, queue or allow",
            }),
        }
    }
}

impl FromStr for CatchUp {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(CatchUp::None),
            "last" => Ok(CatchUp::Last),
            "all" => Ok(CatchUp::All),
            _ => Err(ScheduleError::UnknownOption {
                option: "catch_up",
                value: s.to_owned(),
                expected: "none, last or all",
            }),
        }
    }
}

/// Why a schedule could not be parsed. Messages are lower case, without a final period, and
/// quote what the user wrote, so they fit `FILE:LINE:COL: error: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The cron expression is empty or blank.
    #[error("cron expression is empty")]
    Empty,
    /// Not five or six fields.
    #[error(
        "cron expression '{cron}' has {found} field{plural}; expected 5 (minute hour day-of-month month day-of-week) or 6 (second minute hour day-of-month month day-of-week)",
        plural = if *found == 1 { "" } else { "s" }
    )]
    FieldCount {
        /// The expression as written.
        cron: String,
        /// How many whitespace-separated fields it has.
        found: usize,
    },
    /// One field is invalid.
    #[error("cron expression '{cron}': invalid {field} field '{value}': {reason}")]
    Field {
        /// The expression as written.
        cron: String,
        /// `second`, `minute`, `hour`, `day-of-month`, `month` or `day-of-week`.
        field: &'static str,
        /// The field as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The fields are each valid but croner rejects them together.
    #[error("cron expression '{cron}' is invalid: {reason}")]
    Invalid {
        /// The expression as written.
        cron: String,
        /// croner's reason.
        reason: String,
    },
    /// The fields are each valid but together never match a date (for example 30 February).
    #[error("cron expression '{cron}' never fires: {reason}")]
    NeverFires {
        /// The expression as written.
        cron: String,
        /// Why.
        reason: String,
    },
    /// The time zone is not an IANA name known to the tz database.
    #[error("unknown time zone '{name}'{}", match suggestion { Some(s) => format!(" (did you mean '{s}'?)"), None => String::new() })]
    UnknownTimeZone {
        /// The name as written.
        name: String,
        /// The closest known name, if one is close.
        suggestion: Option<String>,
    },
    /// `overlap` or `catch_up` has an unknown value.
    #[error("unknown {option} '{value}'; expected {expected}")]
    UnknownOption {
        /// `overlap` or `catch_up`.
        option: &'static str,
        /// The value as written.
        value: String,
        /// The allowed values.
        expected: &'static str,
    },
}

/// A compiled schedule: cron fields plus a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    expr: String,
    tz: Tz,
}

const FIELD_NAMES: [&str; 6] = ["second", "minute", "hour", "day-of-month", "month", "day-of-week"];
const FIELD_RANGES: [&str; 6] =
    ["0-59", "0-59", "0-23", "1-31, L, W", "1-12 or JAN-DEC", "0-7 or SUN-SAT (0 and 7 are Sunday), L, #"];
const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    /// Parses a cron expression (five fields, or six with seconds first; ranges, lists, steps,
    /// month and weekday names, 0 or 7 = Sunday) and an IANA time zone (empty = UTC).
    pub fn parse(cron: &str, timezone: &str) -> Result<Schedule, ScheduleError> {
        let tz = parse_timezone(timezone)?;
        let expr = cron.trim();
        if expr.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let mut six: Vec<String> = match fields.len() {
            5 => std::iter::once("0").chain(fields.iter().copied()).map(str::to_owned).collect(),
            6 => fields.iter().map(|f| (*f).to_owned()).collect(),
            found => {
                return Err(ScheduleError::FieldCount { cron: expr.to_owned(), found });
            }
        };
        let offset = 6 - fields.len();
        let field_err = |idx: usize, reason: String| ScheduleError::Field {
            cron: expr.to_owned(),
            field: FIELD_NAMES[idx],
            value: idx.checked_sub(offset).and_then(|i| fields.get(i)).copied().unwrap_or("").to_owned(),
            reason,
        };
        for (idx, field) in six.iter_mut().enumerate() {
            *field = replace_names(idx, field).map_err(|reason| field_err(idx, reason))?;
        }
        let parser = CronParser::builder().seconds(Seconds::Required).year(Year::Disallowed).build();
        // Parse each field alone first, so an error names the field that is wrong.
        for idx in 0..6 {
            if idx < offset {
                continue;
            }
            let mut probe = ["*"; 6];
            probe[idx] = &six[idx];
            if let Err(error) = parser.parse(&probe.join(" ")) {
                let mut reason = clean_croner_message(&error);
                reason.push_str(&format!(" (allowed: {})", FIELD_RANGES[idx]));
                return Err(field_err(idx, reason));
            }
        }
        let parsed = parser
            .parse(&six.join(" "))
            .map_err(|error| ScheduleError::Invalid { cron: expr.to_owned(), reason: clean_croner_message(&error) })?;
        let schedule = Schedule { cron: parsed, expr: expr.to_owned(), tz };
        // A pattern without a year repeats at least every 400 years; if it has no fire from a
        // fixed reference it never fires (e.g. `0 0 30 2 *`).
        let reference = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
        if let Some(reference) = reference
            && schedule.next_local_candidate(reference.naive_utc()).is_none()
        {
            return Err(ScheduleError::NeverFires {
                cron: expr.to_owned(),
                reason: "no date matches the day-of-month, month and day-of-week fields".to_owned(),
            });
        }
        Ok(schedule)
    }

    /// The cron expression as written (trimmed).
    pub fn cron(&self) -> &str {
        &self.expr
    }

    /// The time zone the fields are evaluated in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first fire instant strictly after `after`, or `None` if there is none (only past
    /// year 5000).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Tz>> {
        self.iter_after(after).next()
    }

    /// The fire instants strictly after `after`, in increasing order, each at most once.
    pub fn iter_after(&self, after: DateTime<Utc>) -> FireTimes<'_> {
        let local = after.with_timezone(&self.tz).naive_local();
        let cursor = local.with_nanosecond(0).unwrap_or(local);
        FireTimes { schedule: self, cursor, last: after, done: false }
    }

    /// The next local wall-clock time strictly after `after` whose fields match.
    fn next_local_candidate(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        // croner sees the local timeline as if it were UTC: every wall-clock time exists once.
        let fake = Utc.from_utc_datetime(&after);
        self.cron.find_next_occurrence(&fake, false).ok().map(|t| t.naive_utc())
    }

    /// Maps a local wall-clock time onto the instant it fires at.
    fn resolve(&self, local: NaiveDateTime) -> Option<DateTime<Tz>> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => Some(t),
            LocalResult::Ambiguous(first, second) => Some(first.min(second)),
            LocalResult::None => {
                let end = gap_end(self.tz, local)?;
                self.tz.from_local_datetime(&end).earliest()
            }
        }
    }
}

/// Iterator over fire instants; see [`Schedule::iter_after`].
#[derive(Debug, Clone)]
pub struct FireTimes<'a> {
    schedule: &'a Schedule,
    cursor: NaiveDateTime,
    last: DateTime<Utc>,
    done: bool,
}

impl Iterator for FireTimes<'_> {
    type Item = DateTime<Tz>;

    fn next(&mut self) -> Option<DateTime<Tz>> {
        // Local candidates map monotonically (non-decreasing) onto instants: a repeated hour maps
        // onto its first occurrence and a gap onto its end. So skipping candidates whose instant
        // is not after the last one emitted gives each instant once, in order.
        while !self.done {
            let Some(candidate) = self.schedule.next_local_candidate(self.cursor) else {
                self.done = true;
                break;
            };
            self.cursor = candidate;
            let Some(instant) = self.schedule.resolve(candidate) else {
                continue;
            };
            if instant.with_timezone(&Utc) > self.last {
                self.last = instant.with_timezone(&Utc);
                return Some(instant);
            }
        }
        None
    }
}

/// Formats a fire instant as RFC 3339 with its offset, e.g. `2026-03-29T02:00:00+01:00`.
pub fn format_rfc3339(t: &DateTime<Tz>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Parses an IANA time zone name; an empty name is UTC.
pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Ok(Tz::UTC);
    }
    trimmed
        .parse::<Tz>()
        .map_err(|_| ScheduleError::UnknownTimeZone { name: name.to_owned(), suggestion: suggest_timezone(trimmed) })
}

fn suggest_timezone(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| (strsim::jaro_winkler(&lower, &tz.name().to_ascii_lowercase()), tz.name()))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name.to_owned())
}

/// The first local time at or after `local` that exists, for a `local` inside a gap.
fn gap_end(tz: Tz, local: NaiveDateTime) -> Option<NaiveDateTime> {
    let exists = |t: NaiveDateTime| !matches!(tz.from_local_datetime(&t), LocalResult::None);
    // Exponential search for an existing time, then bisect; gaps are at most a day or so.
    let mut lo = local;
    let mut step = Duration::seconds(1);
    let mut hi = loop {
        let probe = lo.checked_add_signed(step)?;
        if exists(probe) {
            break probe;
        }
        lo = probe;
        step = step * 2;
        if step > Duration::days(8) {
            return None;
        }
    };
    while hi - lo > Duration::seconds(1) {
        let mid = lo + Duration::seconds((hi - lo).num_seconds() / 2);
        if exists(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// Replaces month names in the month field and weekday names in the day-of-week field by
/// numbers, and rejects names anywhere else (croner would replace them in every field).
fn replace_names(idx: usize, field: &str) -> Result<String, String> {
    let upper = field.to_ascii_uppercase();
    let mut out = String::with_capacity(upper.len());
    let mut chars = upper.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !c.is_ascii_alphabetic() {
            out.push(c);
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some(&(i, next)) = chars.peek() {
            if !next.is_ascii_alphabetic() {
                break;
            }
            end = i + next.len_utf8();
            chars.next();
        }
        let word = &upper[start..end];
        let after_dash = upper[..start].ends_with('-');
        let replacement = match (idx, word) {
            (3, "L" | "W" | "LW") | (5, "L") => Some(word.to_owned()),
            (4, _) => MONTHS.iter().position(|m| *m == word).map(|i| (i + 1).to_string()),
            (5, "SUN") if after_dash => Some("7".to_owned()),
            (5, _) => WEEKDAYS.iter().position(|d| *d == word).map(|i| i.to_string()),
            _ => None,
        };
        match replacement {
            Some(r) => out.push_str(&r),
            None => {
                let original = &field[start..end];
                return Err(match idx {
                    4 => format!("unknown month name '{original}' (use JAN-DEC)"),
                    5 => format!("unknown weekday name '{original}' (use SUN-SAT)"),
                    _ => format!("names such as '{original}' are not allowed here (allowed: {})", FIELD_RANGES[idx]),
                });
            }
        }
    }
    Ok(out)
}

/// croner's messages, without their prefixes and final period, in lower case.
fn clean_croner_message(error: &croner::errors::CronError) -> String {
    use croner::errors::CronError;
    let raw = match error {
        CronError::ComponentError(msg) | CronError::InvalidPattern(msg) => msg.clone(),
        CronError::IllegalCharacters(msg) => msg.replace("CronPattern contains illegal character", "illegal character"),
        other => other.to_string(),
    };
    let trimmed = raw.trim().trim_end_matches('.');
    let mut chars = trimmed.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
