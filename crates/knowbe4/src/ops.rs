//! The operation table: every (object, action) pair of the reference, the JSON Schema of its
//! input, and how it maps onto the KSAT GraphQL API (or the Partner API for `account`).
//!
//! The input of a write is the document, whose JSON is the GraphQL operation's arguments
//! (camelCase, as in the reference). The input of `get`, `list` and `delete` is the step's
//! `parameters`. Selection sets are hand-written and keep to the fields the reference confirms.

use compiler::Operation;

/// A GraphQL argument the connector may send, with the type declared for its variable. Only
/// the arguments present in the input are sent, and every variable is declared non-null (a
/// non-null variable is valid in a nullable position, so the declaration holds whether or not
/// the server's argument is nullable).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arg {
    pub name: &'static str,
    pub ty: &'static str,
}

const fn a(name: &'static str, ty: &'static str) -> Arg {
    Arg { name, ty }
}

/// What a mutation's payload yields.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Out {
    /// `node { ... }`: one document.
    Node(&'static str),
    /// `node { ... }` that is a list: one document per element.
    NodeList(&'static str),
    /// `nodes { ... }`: one document per element.
    Nodes(&'static str),
    /// A Boolean payload field: one document, the input with `name: <value>` added.
    Flag { field: &'static str, name: &'static str },
    /// `node` is a Boolean for a list of ids: one document `{id, name: true}` per id of `ids`.
    FlagPerId { ids: &'static str, name: &'static str },
}

/// How an existing object is found after a create whose outcome is unknown.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Exists {
    /// `userByEmail(email:)` with the document's `email`.
    UserByEmail,
    /// `groups(search:, status: ALL)` with an exact (case-insensitive) name match.
    GroupByName,
    /// All pages of a list query; a node with the same name created since the first attempt.
    ListedSince { field: &'static str, filter: &'static str },
}

/// Whether, and how safely, a write can be sent again.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Write {
    /// Sending it twice has the effect of sending it once: retried on any transient fault.
    Idempotent,
    /// A create: never blindly re-sent after a failure that may have been executed; the
    /// connector first checks whether the object exists.
    Create(Exists),
    /// Re-sent after an ambiguous failure; on the re-send, these `(field, reason)` payload
    /// errors mean the first send did it. `refetch` reads the object to report it.
    Tolerant {
        done: &'static [(&'static str, &'static str)],
        refetch: Option<(&'static str, &'static str, &'static str)>,
    },
}

/// How one operation is carried out.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Call {
    /// `field(id:)` (or `userByEmail(email:)` for a user with an `email` parameter).
    Get { field: &'static str, select: &'static str, what: &'static str },
    /// `field(page:, per:, filters...) { nodes { ... } pagination { ... } }`, all pages.
    List { field: &'static str, args: &'static [Arg], select: &'static str, partner: bool },
    /// A mutation whose arguments are the input.
    Mutate { field: &'static str, args: &'static [Arg], out: Out, write: Write },
    /// A mutation over a list of ids, batched across documents: documents with the same other
    /// arguments share calls of at most `BULK_SIZE` ids.
    Bulk { field: &'static str, ids: Arg, key: &'static [Arg], fixed: &'static str, out: Out },
}

/// Safe batch size for bulk membership calls: about 100 user ids time out (504); 95 was the
/// largest batch seen to complete; 50 is the size a live-tested client uses.
pub(crate) const BULK_SIZE: usize = 50;

/// The largest page KnowBe4 lists serve.
pub(crate) const MAX_PER: u32 = 1000;

pub(crate) const ERRORS: &str = "errors { field placeholders reason recordId }";

pub(crate) const USER: &str = "id email firstName lastName displayName employeeNumber jobTitle department division \
organization location managerEmail managerName phoneNumber mobilePhoneNumber extension employeeStartDate archived \
archivedAt archivable admin role currentPpp riskScore riskBooster groupIds customField1 customField2 customField3 \
customField4 customDate1 customDate2 language timeZone outOfOfficeStart outOfOfficeEnd ldapEnabled samlEnabled \
lastSignInAt confirmedAt";
pub(crate) const GROUP: &str = "id name displayName groupType status memberCount riskScore riskBooster accountId ldapObjectGuid createdAt updatedAt";
pub(crate) const TRAINING_CAMPAIGN: &str = "id name active status autoEnroll startsAt endsAt endCampaignOption \
enrollmentDuration enrollmentDurationType relativeDuration timeZone allowPastDueCompletions allowSurveys \
allowSurveyComments allUsers selectedContent selectedGroups percentComplete totalUsers createdAt updatedAt \
notifications { id messageType enabled offsetNumDays }";
pub(crate) const PHISHING_CAMPAIGN: &str = "id name active campaignType frequencyPeriod nextRun timeZone selectedGroups \
selectedTemplateTopics spreadEmails sendingDuration sendingDurationUnits trackingDuration trackingDurationUnits \
businessDays businessHoursStartHour businessHoursEndHour lastRunDate isRecurring hideFromReports trackReplies \
trackOutOfOfficeReplies rating createdAt updatedAt";
pub(crate) const RUN: &str = "id status startedAt completedAt phishPronePercentage recipientCount scheduledCount \
totalClicked totalDelivered totalOpened totalReported totalBounced";
pub(crate) const ENROLLMENT: &str = "id status active completed completedAt pastDue policyAcknowledged score \
timeSpentInSeconds startedAt createdAt user { id email } trainingCampaign { id name } enrollmentItem { __typename \
... on PurchasedCourse { id title polymorphicId } ... on Policy { id title polymorphicId } \
... on KnowledgeRefresher { id title polymorphicId } }";
pub(crate) const STORE_PURCHASE: &str = "id name contentType purchasedAt createdAt updatedAt hidden policyRequired purchasedCourse { id title polymorphicId duration }";
pub(crate) const TEMPLATE_TOPIC: &str = "id name ordering templateCount topicType";
pub(crate) const RECIPIENT: &str = "id email scheduledAt delivered opened clicked clickedCount reported bounced replied \
dataEntered attachmentOpen ipAddress ipLocation browser browserVersion os user { id email }";
pub(crate) const ACCOUNT: &str = "id companyName displayName domain archived billingType numberOfSeats userCount \
allUserCount pstCount purchasedCourseCount createdAt subscriptionEndDate partnerId partnerDisplayName phishPronePercentage";

/// One (object, action) pair.
#[derive(Debug)]
pub(crate) struct OpSpec {
    pub object: &'static str,
    pub action: &'static str,
    pub call: Call,
}

const fn op(object: &'static str, action: &'static str, call: Call) -> OpSpec {
    OpSpec { object, action, call }
}

const INT: &str = "Int!";
const INTS: &str = "[Int!]!";
const STR: &str = "String!";
const BOOL: &str = "Boolean!";

const USER_CREATE_ARGS: &[Arg] = &[
    a("email", STR),
    a("firstName", STR),
    a("lastName", STR),
    a("jobTitle", STR),
    a("employeeNumber", STR),
    a("department", STR),
    a("division", STR),
    a("organization", STR),
    a("location", STR),
    a("managerEmail", STR),
    a("managerName", STR),
    a("phoneNumber", STR),
];

/// Every operation, in the order of the reference's table.
pub(crate) static OPS: &[OpSpec] = &[
    op(
        "user",
        "create",
        Call::Mutate {
            field: "userCreate",
            args: USER_CREATE_ARGS,
            out: Out::Node(USER),
            write: Write::Create(Exists::UserByEmail),
        },
    ),
    op(
        "user",
        "update",
        Call::Mutate {
            field: "userEdit",
            args: &[a("userId", INT), a("attributes", "UserAttributes!")],
            out: Out::Node(USER),
            write: Write::Idempotent,
        },
    ),
    op("user", "get", Call::Get { field: "user", select: USER, what: "user" }),
    op(
        "user",
        "list",
        Call::List {
            field: "users",
            args: &[
                a("status", "UserStatusFilters!"),
                a("type", "UserTypes!"),
                a("group", INT),
                a("filterGroups", INTS),
                a("filterNoGroups", BOOL),
                a("managersOnly", BOOL),
                a("search", STR),
            ],
            select: USER,
            partner: false,
        },
    ),
    op(
        "user",
        "archive",
        Call::Bulk { field: "userArchive", ids: a("userIds", INTS), key: &[], fixed: "", out: Out::NodeList(USER) },
    ),
    op(
        "user",
        "unarchive",
        Call::Bulk { field: "userUnarchive", ids: a("userIds", INTS), key: &[], fixed: "", out: Out::NodeList(USER) },
    ),
    op(
        "group",
        "create",
        Call::Mutate {
            field: "groupCreate",
            args: &[a("attributes", "GroupAttributes!")],
            out: Out::Node(GROUP),
            write: Write::Create(Exists::GroupByName),
        },
    ),
    op("group", "get", Call::Get { field: "group", select: GROUP, what: "group" }),
    op(
        "group",
        "list",
        Call::List {
            field: "groups",
            args: &[a("status", "GroupStatuses!"), a("type", "GroupTypes!"), a("search", STR)],
            select: GROUP,
            partner: false,
        },
    ),
    op(
        "group",
        "archive",
        Call::Bulk {
            field: "groupArchive",
            ids: a("ids", INTS),
            key: &[],
            fixed: "archive: true",
            out: Out::Nodes(GROUP),
        },
    ),
    op(
        "group",
        "unarchive",
        Call::Bulk {
            field: "groupArchive",
            ids: a("ids", INTS),
            key: &[],
            fixed: "archive: false",
            out: Out::Nodes(GROUP),
        },
    ),
    op(
        "group",
        "delete",
        Call::Mutate {
            field: "groupDelete",
            args: &[a("ids", INTS)],
            out: Out::Nodes(GROUP),
            write: Write::Tolerant { done: &[("ids", "not_found")], refetch: None },
        },
    ),
    op(
        "group_membership",
        "add",
        Call::Bulk {
            field: "userAddToGroups",
            ids: a("userIds", INTS),
            key: &[a("groupIds", INTS)],
            fixed: "",
            out: Out::NodeList(USER),
        },
    ),
    op(
        "group_membership",
        "remove",
        Call::Bulk {
            field: "userDeleteMemberships",
            ids: a("userIds", INTS),
            key: &[a("groupId", INT)],
            fixed: "",
            out: Out::NodeList(USER),
        },
    ),
    op(
        "training_campaign",
        "create",
        Call::Mutate {
            field: "trainingCampaignCreate",
            args: &[a("attributes", "TrainingCampaignAttributes!"), a("endCampaignOption", "TrainingCampaignEnd!")],
            out: Out::Node(TRAINING_CAMPAIGN),
            write: Write::Create(Exists::ListedSince { field: "trainingCampaigns", filter: "filter: ALL" }),
        },
    ),
    op(
        "training_campaign",
        "update",
        Call::Mutate {
            field: "trainingCampaignEdit",
            args: &[
                a("id", INT),
                a("attributes", "TrainingCampaignAttributes!"),
                a("endCampaignOption", "TrainingCampaignEnd!"),
            ],
            out: Out::Node(TRAINING_CAMPAIGN),
            write: Write::Idempotent,
        },
    ),
    op(
        "training_campaign",
        "get",
        Call::Get { field: "trainingCampaign", select: TRAINING_CAMPAIGN, what: "training campaign" },
    ),
    op(
        "training_campaign",
        "list",
        Call::List {
            field: "trainingCampaigns",
            args: &[a("filter", "TrainingCampaignFilters!"), a("statuses", "[TrainingCampaignStatuses!]!")],
            select: TRAINING_CAMPAIGN,
            partner: false,
        },
    ),
    op(
        "training_campaign",
        "delete",
        Call::Mutate {
            field: "trainingCampaignDelete",
            args: &[a("ids", INTS)],
            out: Out::FlagPerId { ids: "ids", name: "deleted" },
            write: Write::Tolerant { done: &[("ids", "not_found")], refetch: None },
        },
    ),
    op(
        "close_training_campaign",
        "update",
        Call::Mutate {
            field: "trainingCampaignClose",
            args: &[a("id", INT)],
            out: Out::Node(TRAINING_CAMPAIGN),
            write: Write::Idempotent,
        },
    ),
    op(
        "training_campaign_user",
        "add",
        Call::Mutate {
            field: "trainingCampaignAddUser",
            args: &[a("trainingCampaignId", INT), a("userId", INT)],
            out: Out::Flag { field: "node", name: "added" },
            write: Write::Tolerant { done: &[("userId", "taken")], refetch: None },
        },
    ),
    op(
        "training_campaign_user",
        "remove",
        Call::Mutate {
            field: "trainingCampaignRemoveUser",
            args: &[a("trainingCampaignId", INT), a("userId", INT)],
            out: Out::Flag { field: "removed", name: "removed" },
            write: Write::Tolerant { done: &[("userId", "not_found")], refetch: None },
        },
    ),
    op(
        "phishing_campaign",
        "create",
        Call::Mutate {
            field: "phishingCampaignCreate",
            args: &[a("attributes", "PhishingCampaignAttributes!")],
            out: Out::Node(PHISHING_CAMPAIGN),
            write: Write::Create(Exists::ListedSince { field: "phishingCampaigns", filter: "filter: ALL" }),
        },
    ),
    op(
        "phishing_campaign",
        "update",
        Call::Mutate {
            field: "phishingCampaignEdit",
            args: &[a("id", INT), a("attributes", "PhishingCampaignAttributes!")],
            out: Out::Node(PHISHING_CAMPAIGN),
            write: Write::Idempotent,
        },
    ),
    op(
        "phishing_campaign",
        "get",
        Call::Get { field: "phishingCampaign", select: PHISHING_CAMPAIGN, what: "phishing campaign" },
    ),
    op(
        "phishing_campaign",
        "list",
        Call::List {
            field: "phishingCampaigns",
            args: &[a("filter", "PhishingCampaignFilters!"), a("type", "PhishingCampaignTypes!")],
            select: PHISHING_CAMPAIGN,
            partner: false,
        },
    ),
    op(
        "phishing_campaign_activation",
        "update",
        Call::Mutate {
            field: "phishingCampaignDeactivate",
            args: &[a("id", INT), a("deactivate", BOOL)],
            out: Out::Node(PHISHING_CAMPAIGN),
            write: Write::Idempotent,
        },
    ),
    op(
        "phishing_campaign_run",
        "update",
        Call::Mutate {
            field: "phishingCampaignRunStop",
            args: &[a("campaignId", INT), a("runId", INT)],
            out: Out::Node(RUN),
            write: Write::Tolerant {
                done: &[("runId", "not_running")],
                refetch: Some(("phishingCampaignRun", "runId", RUN)),
            },
        },
    ),
    op(
        "phishing_campaign_run",
        "get",
        Call::Get { field: "phishingCampaignRun", select: RUN, what: "phishing campaign run" },
    ),
    op(
        "phishing_campaign_run",
        "list",
        Call::List { field: "phishingCampaignRuns", args: &[a("campaignId", INT)], select: RUN, partner: false },
    ),
    op(
        "phishing_campaign_run",
        "delete",
        Call::Mutate {
            field: "phishingCampaignRunDelete",
            args: &[a("campaignId", INT), a("runId", INT)],
            out: Out::Node(RUN),
            write: Write::Tolerant { done: &[("runId", "not_found")], refetch: None },
        },
    ),
    op("enrollment", "get", Call::Get { field: "enrollment", select: ENROLLMENT, what: "enrollment" }),
    op(
        "enrollment",
        "list",
        Call::List {
            field: "enrollments",
            args: &[
                a("trainingCampaignId", INT),
                a("userId", INT),
                a("status", "EnrollmentStatuses!"),
                a("storePurchaseId", INT),
            ],
            select: ENROLLMENT,
            partner: false,
        },
    ),
    op(
        "store_purchase",
        "list",
        Call::List { field: "storePurchases", args: &[], select: STORE_PURCHASE, partner: false },
    ),
    op(
        "template_topic",
        "list",
        Call::List {
            field: "templateTopics",
            args: &[a("types", "[TemplateTopicTypes!]!")],
            select: TEMPLATE_TOPIC,
            partner: false,
        },
    ),
    op(
        "phishing_campaign_recipient",
        "list",
        Call::List {
            field: "phishingCampaignRecipients",
            args: &[a("campaignRunId", INT)],
            select: RECIPIENT,
            partner: false,
        },
    ),
    op(
        "account",
        "list",
        Call::List {
            field: "accounts",
            args: &[
                a("status", "AccountStatuses!"),
                a("billingType", "AccountBillingTypes!"),
                a("search", STR),
                a("archivedUsers", BOOL),
                a("partnerId", INT),
                a("sortField", "AccountSortFields!"),
                a("sortDirection", "SortDirections!"),
            ],
            select: ACCOUNT,
            partner: true,
        },
    ),
];

macro_rules! operations {
    ($($object:literal $action:literal),* $(,)?) => {
        /// The (object, action) pairs, for `stepwise validate` (same order as [`OPS`]).
        pub(crate) static OPERATIONS: &[Operation] = &[$(Operation { object: $object, action: $action }),*];
    };
}

operations!(
    "user" "create", "user" "update", "user" "get", "user" "list", "user" "archive", "user" "unarchive",
    "group" "create", "group" "get", "group" "list", "group" "archive", "group" "unarchive", "group" "delete",
    "group_membership" "add", "group_membership" "remove",
    "training_campaign" "create", "training_campaign" "update", "training_campaign" "get", "training_campaign" "list",
    "training_campaign" "delete",
    "close_training_campaign" "update",
    "training_campaign_user" "add", "training_campaign_user" "remove",
    "phishing_campaign" "create", "phishing_campaign" "update", "phishing_campaign" "get", "phishing_campaign" "list",
    "phishing_campaign_activation" "update",
    "phishing_campaign_run" "update", "phishing_campaign_run" "get", "phishing_campaign_run" "list",
    "phishing_campaign_run" "delete",
    "enrollment" "get", "enrollment" "list",
    "store_purchase" "list", "template_topic" "list", "phishing_campaign_recipient" "list",
    "account" "list",
);

/// The operation of `(object, action)`.
pub(crate) fn find(object: &str, action: &str) -> Option<&'static OpSpec> {
    OPS.iter().find(|o| o.object == object && o.action == action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_and_ops_agree() {
        assert_eq!(OPERATIONS.len(), OPS.len());
        for (o, spec) in OPERATIONS.iter().zip(OPS) {
            assert_eq!((o.object, o.action), (spec.object, spec.action));
        }
        let mut seen = std::collections::HashSet::new();
        for o in OPERATIONS {
            assert!(seen.insert((o.object, o.action)), "duplicate {o:?}");
        }
    }

    #[test]
    fn covers_the_reference_table() {
        // The table at the top of ../shared/knowbe4-api.md.
        let table: &[(&str, &[&str])] = &[
            ("user", &["create", "update", "get", "list", "archive", "unarchive"]),
            ("group", &["create", "get", "list", "archive", "unarchive", "delete"]),
            ("group_membership", &["add", "remove"]),
            ("training_campaign", &["create", "update", "get", "list", "delete"]),
            ("close_training_campaign", &["update"]),
            ("training_campaign_user", &["add", "remove"]),
            ("phishing_campaign", &["create", "update", "get", "list"]),
            ("phishing_campaign_activation", &["update"]),
            ("phishing_campaign_run", &["update", "get", "list", "delete"]),
            ("enrollment", &["get", "list"]),
            ("store_purchase", &["list"]),
            ("template_topic", &["list"]),
            ("phishing_campaign_recipient", &["list"]),
            ("account", &["list"]),
        ];
        let n: usize = table.iter().map(|(_, a)| a.len()).sum();
        assert_eq!(n, OPERATIONS.len());
        for (object, actions) in table {
            for action in *actions {
                assert!(find(object, action).is_some(), "{object}.{action}");
            }
        }
    }
}
