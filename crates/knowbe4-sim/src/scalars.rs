//! GraphQL scalars and enums of the KSAT schema: ISO 8601 dates, the status / type enums the
//! reference confirms, and tolerant enum-like scalars for value sets no public source lists.

use async_graphql::{Enum, InputValueError, InputValueResult, Name, Scalar, ScalarType, Value};
use chrono::{DateTime as ChronoDateTime, NaiveDate, SecondsFormat, Utc};

/// `ISO8601Date`: a calendar date, `YYYY-MM-DD`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub String);

#[Scalar(name = "ISO8601Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|d| Date(d.format("%Y-%m-%d").to_string()))
                .map_err(|_| InputValueError::custom(format!("{s:?} is not an ISO 8601 date"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// `ISO8601DateTime`: a UTC timestamp, `YYYY-MM-DDTHH:MM:SSZ`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime(pub String);

impl DateTime {
    /// The current time.
    pub fn now() -> Self {
        Self::from_chrono(Utc::now())
    }

    /// Seconds after 2025-01-01T00:00:00Z, for deterministic seed data.
    pub fn seeded(offset_secs: i64) -> Self {
        let base = 1_735_689_600_i64; // 2025-01-01T00:00:00Z
        let t = ChronoDateTime::<Utc>::from_timestamp(base + offset_secs, 0).unwrap_or_default();
        Self::from_chrono(t)
    }

    fn from_chrono(t: ChronoDateTime<Utc>) -> Self {
        DateTime(t.to_rfc3339_opts(SecondsFormat::Secs, true))
    }

    /// The date part, `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        self.0.chars().take(10).collect()
    }

    /// Parses RFC 3339, or a bare date (midnight UTC).
    pub fn parse_str(s: &str) -> Option<Self> {
        if let Ok(t) = ChronoDateTime::parse_from_rfc3339(s) {
            return Some(Self::from_chrono(t.with_timezone(&Utc)));
        }
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        Some(Self::from_chrono(d.and_hms_opt(0, 0, 0)?.and_utc()))
    }
}

#[Scalar(name = "ISO8601DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => DateTime::parse_str(s)
                .ok_or_else(|| InputValueError::custom(format!("{s:?} is not an ISO 8601 date-time"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

fn enum_like(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
}

/// Declares an enum-like scalar that accepts any `UPPER_SNAKE` value, written as an enum literal
/// or as a string variable. Used where the real enum's values are not publicly known, so that a
/// client is not rejected for a value the real service may accept.
macro_rules! loose_enum {
    ($ty:ident, $name:literal) => {
        #[doc = concat!("`", $name, "`: an enum whose full value list is not public; any UPPER_SNAKE value is accepted.")]
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $ty(pub String);

        #[Scalar(name = $name)]
        impl ScalarType for $ty {
            fn parse(value: Value) -> InputValueResult<Self> {
                match &value {
                    Value::Enum(n) => Ok($ty(n.to_string())),
                    Value::String(s) if enum_like(s) => Ok($ty(s.clone())),
                    _ => Err(InputValueError::expected_type(value)),
                }
            }

            fn is_valid(value: &Value) -> bool {
                match value {
                    Value::Enum(_) => true,
                    Value::String(s) => enum_like(s),
                    _ => false,
                }
            }

            fn to_value(&self) -> Value {
                Value::Enum(Name::new(&self.0))
            }
        }

        impl $ty {
            #[allow(dead_code)]
            pub fn new(s: &str) -> Self {
                $ty(s.to_string())
            }
        }
    };
}

loose_enum!(TimeZones, "TimeZones");
loose_enum!(DurationUnits, "DurationUnits");
loose_enum!(NotificationMessageTypes, "NotificationMessageTypes");
loose_enum!(TemplateTopicTypes, "TemplateTopicTypes");
loose_enum!(EnrollmentStatuses, "EnrollmentStatuses");
loose_enum!(PermissionScopes, "PermissionScopes");
loose_enum!(DeliveryMethods, "NotificationDeliveryMethods");

/// `users(status:)`.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UserStatusFilters {
    Active,
    Archived,
    All,
}

/// `users(type:)`.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UserTypes {
    All,
    User,
    Admin,
    AdminOrSr,
    Student,
}

/// A user's console role.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "UserRoles")]
pub enum UserRole {
    User,
    Admin,
    Student,
}

/// Group status, also the `groups(status:)` filter.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum GroupStatuses {
    Active,
    Archived,
    All,
}

/// Group kinds: only CONSOLE groups take manual membership changes.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum GroupTypes {
    Console,
    Smart,
    AdiManaged,
}

/// `trainingCampaigns(filter:)`.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum TrainingCampaignFilters {
    Active,
    Inactive,
    All,
}

/// Training campaign status.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum TrainingCampaignStatuses {
    Created,
    Enrolling,
    InProgress,
    Closed,
    Completed,
    Testmode,
}

/// How a training campaign ends.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum TrainingCampaignEnd {
    SpecifyDate,
    Relative,
    NoEndDate,
}

/// Unit of a training enrollment duration.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum EnrollmentDurationTypes {
    Days,
    Weeks,
    Months,
}

/// `phishingCampaigns(filter:)`.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PhishingCampaignFilters {
    Active,
    Inactive,
    Hidden,
    Phishflip,
    All,
}

/// Phishing campaign kind, also the `phishingCampaigns(type:)` filter.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PhishingCampaignTypes {
    Standard,
    PhishFlip,
    Callback,
    All,
}

/// How often a phishing campaign runs.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum FrequencyPeriods {
    Onetime,
    Week,
    Biweek,
    Month,
    Quarter,
}

/// Phishing campaign run status.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PhishingCampaignRunStatuses {
    Scheduled,
    Sending,
    Tracking,
    Completed,
    Stopped,
}

/// Partner `accounts(status:)`.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AccountStatuses {
    All,
    Active,
    Archived,
}

/// Partner account billing type, also the `accounts(billingType:)` filter.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AccountBillingTypes {
    Any,
    Paid,
    Trial,
    Free,
}

/// Partner `accounts(sortField:)`.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AccountSortFields {
    Organization,
    DateCreated,
    Seats,
    Users,
    PhishProne,
    Psts,
}

/// Sort direction.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SortDirections {
    Ascending,
    Descending,
}

/// Partner `accounts(otherPartnersAccounts:)`.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AccountPartnerInclusions {
    All,
    None,
}
