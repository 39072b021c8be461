//! Schedule tests: daylight-saving transitions in three zones, names, and parse errors.

use chrono::{DateTime, Utc};

use crate::schedule::{CatchUp, Overlap, Schedule, ScheduleError, format_rfc3339};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("test timestamp").with_timezone(&Utc)
}

/// The next `n` fires of `cron` in `tz` after `from`, as RFC 3339 strings.
#[track_caller]
fn fires(cron: &str, tz: &str, from: &str, n: usize) -> Vec<String> {
    let schedule = Schedule::parse(cron, tz).expect("valid schedule");
    schedule.iter_after(utc(from)).take(n).map(|t| format_rfc3339(&t)).collect()
}

#[track_caller]
fn parse_err(cron: &str, tz: &str) -> String {
    match Schedule::parse(cron, tz) {
        Ok(_) => panic!("'{cron}' in '{tz}' should not parse"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn london_spring_forward_fires_once_after_the_gap() {
    assert_eq!(
        fires("30 1 * * *", "Europe/London", "2026-03-28T12:00:00Z", 3),
        ["2026-03-29T02:00:00+01:00", "2026-03-30T01:30:00+01:00", "2026-03-31T01:30:00+01:00"]
    );
}

#[test]
fn london_fall_back_fires_once_at_first_occurrence() {
    assert_eq!(
        fires("30 1 * * *", "Europe/London", "2026-10-24T12:00:00Z", 3),
        ["2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00", "2026-10-27T01:30:00+00:00"]
    );
}

#[test]
fn london_every_15_minutes_through_spring_forward() {
    assert_eq!(
        fires("*/15 * * * *", "Europe/London", "2026-03-29T00:20:00Z", 5),
        [
            "2026-03-29T00:30:00+00:00",
            "2026-03-29T00:45:00+00:00",
            // 01:00, 01:15, 01:30 and 01:45 do not exist: one fire at the end of the gap,
            // which is also 02:00 itself.
            "2026-03-29T02:00:00+01:00",
            "2026-03-29T02:15:00+01:00",
            "2026-03-29T02:30:00+01:00",
        ]
    );
}

#[test]
fn london_every_15_minutes_through_fall_back() {
    assert_eq!(
        fires("*/15 * * * *", "Europe/London", "2026-10-24T23:50:00Z", 6),
        [
            "2026-10-25T01:00:00+01:00",
            "2026-10-25T01:15:00+01:00",
            "2026-10-25T01:30:00+01:00",
            "2026-10-25T01:45:00+01:00",
            // The repeated 01:00-01:59 (GMT) does not fire again.
            "2026-10-25T02:00:00+00:00",
            "2026-10-25T02:15:00+00:00",
        ]
    );
}

#[test]
fn starting_inside_the_repeated_hour_waits_for_its_end() {
    // 01:20 GMT is the second 01:20 of the night; 01:30 and 01:45 already fired at +01:00.
    assert_eq!(
        fires("*/15 * * * *", "Europe/London", "2026-10-25T01:20:00Z", 2),
        ["2026-10-25T02:00:00+00:00", "2026-10-25T02:15:00+00:00"]
    );
    // Starting in the first occurrence continues normally.
    assert_eq!(
        fires("*/15 * * * *", "Europe/London", "2026-10-25T00:20:00Z", 2),
        ["2026-10-25T01:30:00+01:00", "2026-10-25T01:45:00+01:00"]
    );
}

#[test]
fn hourly_counts_on_transition_days() {
    let schedule = Schedule::parse("0 * * * *", "Europe/London").unwrap();
    let count =
        |from: &str, to: &str| schedule.iter_after(utc(from)).take_while(|t| t.with_timezone(&Utc) < utc(to)).count();
    // 23-hour day: 01:00 does not exist and folds into 02:00.
    assert_eq!(count("2026-03-28T23:59:59Z", "2026-03-29T23:00:00Z"), 23);
    // 25-hour day: still 24 local hours, each fired once.
    assert_eq!(count("2026-10-24T22:59:59Z", "2026-10-25T23:59:59Z"), 24);
}

#[test]
fn every_second_through_the_gap() {
    assert_eq!(
        fires("* * * * * *", "Europe/London", "2026-03-29T00:59:58Z", 3),
        ["2026-03-29T00:59:59+00:00", "2026-03-29T02:00:00+01:00", "2026-03-29T02:00:01+01:00"]
    );
    assert_eq!(
        fires("* * * * * *", "Europe/London", "2026-10-25T00:59:58Z", 3),
        ["2026-10-25T01:59:59+01:00", "2026-10-25T02:00:00+00:00", "2026-10-25T02:00:01+00:00"]
    );
}

#[test]
fn new_york_transitions() {
    assert_eq!(
        fires("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2),
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
    );
    assert_eq!(
        fires("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
        ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
    );
    assert_eq!(
        fires("*/20 * * * *", "America/New_York", "2026-11-01T05:30:00Z", 4),
        [
            "2026-11-01T01:40:00-04:00",
            "2026-11-01T02:00:00-05:00",
            "2026-11-01T02:20:00-05:00",
            "2026-11-01T02:40:00-05:00",
        ]
    );
}

#[test]
fn sydney_april_fall_back_and_october_spring_forward() {
    // April: 03:00 AEDT becomes 02:00 AEST; 02:00-02:59 happens twice.
    assert_eq!(
        fires("30 2 * * *", "Australia/Sydney", "2026-04-04T00:00:00Z", 2),
        ["2026-04-05T02:30:00+11:00", "2026-04-06T02:30:00+10:00"]
    );
    assert_eq!(
        fires("*/30 * * * *", "Australia/Sydney", "2026-04-04T14:45:00Z", 5),
        [
            "2026-04-05T02:00:00+11:00",
            "2026-04-05T02:30:00+11:00",
            "2026-04-05T03:00:00+10:00",
            "2026-04-05T03:30:00+10:00",
            "2026-04-05T04:00:00+10:00",
        ]
    );
    // October: 02:00 AEST becomes 03:00 AEDT; 02:00-02:59 does not exist.
    assert_eq!(
        fires("30 2 * * *", "Australia/Sydney", "2026-10-03T00:00:00Z", 2),
        ["2026-10-04T03:00:00+11:00", "2026-10-05T02:30:00+11:00"]
    );
    assert_eq!(
        fires("*/15 * * * *", "Australia/Sydney", "2026-10-03T15:40:00Z", 3),
        ["2026-10-04T01:45:00+10:00", "2026-10-04T03:00:00+11:00", "2026-10-04T03:15:00+11:00"]
    );
}

#[test]
fn fires_strictly_after_and_in_order() {
    let schedule = Schedule::parse("*/10 * * * * *", "UTC").unwrap();
    let at = utc("2026-01-01T00:00:10Z");
    assert_eq!(format_rfc3339(&schedule.next_after(at).unwrap()), "2026-01-01T00:00:20+00:00");
    let sub_second = utc("2026-01-01T00:00:09.999Z");
    assert_eq!(format_rfc3339(&schedule.next_after(sub_second).unwrap()), "2026-01-01T00:00:10+00:00");
    let list: Vec<_> = Schedule::parse("*/7 * * * *", "Europe/London")
        .unwrap()
        .iter_after(utc("2026-10-24T20:00:00Z"))
        .take(200)
        .collect();
    assert!(list.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn names_ranges_lists_and_sunday() {
    let mon_fri = fires("0 9 * jan-mar MON-FRI", "UTC", "2026-01-02T10:00:00Z", 2);
    assert_eq!(mon_fri, ["2026-01-05T09:00:00+00:00", "2026-01-06T09:00:00+00:00"]);
    let sunday = "2026-01-04T00:00:00+00:00";
    for cron in ["0 0 * * 0", "0 0 * * 7", "0 0 * * SUN", "0 0 * * sat-sun"] {
        let got = fires(cron, "", "2026-01-02T12:00:00Z", 2);
        assert!(got.contains(&sunday.to_owned()), "{cron}: {got:?}");
    }
    assert_eq!(
        fires("0 0,30 8-9 * * *", "UTC", "2026-01-01T00:00:00Z", 5),
        [
            "2026-01-01T08:00:00+00:00",
            "2026-01-01T08:30:00+00:00",
            "2026-01-01T09:00:00+00:00",
            "2026-01-01T09:30:00+00:00",
            "2026-01-02T08:00:00+00:00",
        ]
    );
}

#[test]
fn parse_errors_name_the_field() {
    expect(&parse_err("", "UTC"), "cron expression is empty");
    expect(&parse_err("* * *", "UTC"), "has 3 fields; expected 5");
    expect(&parse_err("* * * * * * *", "UTC"), "has 7 fields");
    expect(&parse_err("61 * * * *", "UTC"), "invalid minute field '61'");
    expect(&parse_err("61 * * * *", "UTC"), "allowed: 0-59");
    expect(&parse_err("0 61 * * * *", "UTC"), "invalid minute field '61'");
    expect(&parse_err("99 * * * * *", "UTC"), "invalid second field '99'");
    expect(&parse_err("0 24 * * *", "UTC"), "invalid hour field '24'");
    expect(&parse_err("0 0 32 * *", "UTC"), "invalid day-of-month field '32'");
    expect(&parse_err("0 0 * 13 *", "UTC"), "invalid month field '13'");
    expect(&parse_err("0 0 * FOO *", "UTC"), "unknown month name 'FOO'");
    expect(&parse_err("0 0 * * 8", "UTC"), "invalid day-of-week field '8'");
    expect(&parse_err("0 0 * * MONDAY", "UTC"), "unknown weekday name 'MONDAY'");
    expect(&parse_err("0 0 * MON *", "UTC"), "invalid month field 'MON'");
    expect(&parse_err("*/0 * * * *", "UTC"), "invalid minute field '*/0'");
    expect(&parse_err("x * * * *", "UTC"), "invalid minute field 'x'");
    expect(&parse_err("0 0 30 2 *", "UTC"), "never fires");
}

#[test]
fn unknown_time_zone_is_reported_with_a_suggestion() {
    let message = parse_err("* * * * *", "Europe/Lodnon");
    assert_eq!(message, "unknown time zone 'Europe/Lodnon' (did you mean 'Europe/London'?)");
    expect(&parse_err("* * * * *", "Mars/Olympus_Mons"), "unknown time zone 'Mars/Olympus_Mons'");
    assert_eq!(Schedule::parse("* * * * *", "").unwrap().timezone(), chrono_tz::Tz::UTC);
}

#[test]
fn options_parse_and_default() {
    assert_eq!("queue".parse::<Overlap>(), Ok(Overlap::Queue));
    assert_eq!(Overlap::default(), Overlap::Skip);
    assert_eq!(CatchUp::default(), CatchUp::Last);
    assert_eq!("all".parse::<CatchUp>(), Ok(CatchUp::All));
    let err: ScheduleError = "sometimes".parse::<CatchUp>().unwrap_err();
    assert_eq!(err.to_string(), "unknown catch_up 'sometimes'; expected none, last or all");
}

#[track_caller]
fn expect(message: &str, fragment: &str) {
    assert!(message.contains(fragment), "message {message:?} lacks {fragment:?}");
}
