//! The in-memory data set and its GraphQL object types (field names camelCase, as in KSAT).
//! Plain fields are stored; relations (`groups`, `memberCount`, `trainingCampaign`, ...) are
//! resolved on demand from the shared [`Db`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, MutexGuard};

use async_graphql::{ComplexObject, Context, Json, OutputType, SimpleObject, Union};

use crate::scalars::*;
use crate::server::Shared;

/// Locks the data set for the duration of one resolver.
pub(crate) fn db<'a>(ctx: &Context<'a>) -> MutexGuard<'a, Db> {
    let shared = ctx.data_unchecked::<Arc<Shared>>();
    shared.db.lock().unwrap_or_else(|e| e.into_inner())
}

/// The tenant the KSAT tokens belong to.
pub(crate) const TENANT_NAME: &str = "Stepwise Sandbox Inc.";
pub(crate) const TENANT_DOMAIN: &str = "example.com";

/// Every object of the simulated tenant and of the partner.
#[derive(Debug, Default)]
pub(crate) struct Db {
    pub users: BTreeMap<i32, User>,
    pub groups: BTreeMap<i32, Group>,
    pub training_campaigns: BTreeMap<i32, TrainingCampaign>,
    pub enrollments: BTreeMap<i32, Enrollment>,
    pub store_purchases: BTreeMap<i32, StorePurchase>,
    pub policies: BTreeMap<i32, Policy>,
    pub knowledge_refreshers: BTreeMap<i32, KnowledgeRefresher>,
    pub phishing_campaigns: BTreeMap<i32, PhishingCampaign>,
    pub runs: BTreeMap<i32, PhishingCampaignRun>,
    pub recipients: BTreeMap<i32, PhishingCampaignRecipient>,
    pub template_topics: BTreeMap<i32, TemplateTopic>,
    pub phish_domains: BTreeMap<i32, PhishDomain>,
    pub accounts: BTreeMap<i32, Account>,
    pub tenant_account_id: i32,
    pub next_id: BTreeMap<&'static str, i32>,
}

impl Db {
    /// The next id of a kind of object (ids are unique per kind, as in KnowBe4).
    pub fn next(&mut self, kind: &'static str) -> i32 {
        let base = match kind {
            "user" => 10_001,
            "group" => 2_001,
            "training_campaign" => 301,
            "enrollment" => 70_001,
            "phishing_campaign" => 401,
            "run" => 5_001,
            "recipient" => 900_001,
            "notification" => 8_001,
            _ => 1,
        };
        let slot = self.next_id.entry(kind).or_insert(base);
        let id = *slot;
        *slot += 1;
        id
    }

    pub fn user_by_email(&self, email: &str) -> Option<&User> {
        self.users.values().find(|u| u.email.eq_ignore_ascii_case(email))
    }

    pub fn members_of(&self, group_id: i32) -> impl Iterator<Item = &User> {
        self.users.values().filter(move |u| u.memberships.contains(&group_id))
    }

    pub fn active_user_count(&self) -> i32 {
        count(self.users.values().filter(|u| !u.archived))
    }

    /// Users a campaign targets: all active users, or the active members of its groups.
    pub fn targeted_users(&self, all_users: bool, groups: &[i32]) -> Vec<i32> {
        self.users
            .values()
            .filter(|u| !u.archived && (all_users || groups.iter().any(|g| u.memberships.contains(g))))
            .map(|u| u.id)
            .collect()
    }

    /// The content item a `selectedContent` polymorphic id (`PurchasedCourse:12`) names, if it
    /// exists, with the store purchase it came from.
    pub fn content(&self, polymorphic_id: &str) -> Option<(EnrollmentItem, Option<i32>)> {
        let (kind, id) = polymorphic_id.split_once(':')?;
        let id: i32 = id.trim().parse().ok()?;
        match kind {
            "PurchasedCourse" => self
                .store_purchases
                .values()
                .find(|s| s.purchased_course_id == id)
                .map(|s| (EnrollmentItem::PurchasedCourse(s.course.clone()), Some(s.id))),
            "Policy" => self.policies.get(&id).cloned().map(|p| (EnrollmentItem::Policy(p), None)),
            "KnowledgeRefresher" => {
                self.knowledge_refreshers.get(&id).cloned().map(|k| (EnrollmentItem::KnowledgeRefresher(k), None))
            }
            _ => None,
        }
    }

    /// Enrolls a user in every content item of a campaign.
    pub fn enroll(&mut self, campaign_id: i32, user_id: i32, now: &DateTime) {
        let Some(content) = self.training_campaigns.get(&campaign_id).map(|c| c.selected_content.clone()) else {
            return;
        };
        for item in content {
            let Some((resolved, purchase)) = self.content(&item) else { continue };
            let id = self.next("enrollment");
            let e = Enrollment::new(id, (campaign_id, user_id), (&resolved, purchase), "Not Started", now.clone());
            self.enrollments.insert(id, e);
        }
    }

    pub fn is_enrolled(&self, campaign_id: i32, user_id: i32) -> bool {
        self.enrollments.values().any(|e| e.campaign_id == campaign_id && e.user_id == user_id)
    }

    /// The tenant's own account with live user counts.
    pub fn account_view(&self, id: i32, include_archived: bool) -> Option<Account> {
        let mut a = self.accounts.get(&id)?.clone();
        if id == self.tenant_account_id {
            let active = self.active_user_count();
            let all = count(self.users.values());
            a.user_count = if include_archived { all } else { active };
            a.all_user_count = all;
            a.training_campaign_count = count(self.training_campaigns.values());
            a.pst_count = count(self.runs.values());
            a.purchased_course_count = count(self.store_purchases.values());
        } else {
            a.user_count =
                if include_archived { a.sim_active_users + a.sim_archived_users } else { a.sim_active_users };
            a.all_user_count = a.sim_active_users + a.sim_archived_users;
        }
        Some(a)
    }
}

pub(crate) fn count<T>(it: impl Iterator<Item = T>) -> i32 {
    i32::try_from(it.count()).unwrap_or(i32::MAX)
}

/// `{ page pages per totalCount }` of every KSAT list.
#[derive(SimpleObject, Clone, Debug)]
pub struct Pagination {
    pub page: i32,
    pub pages: i32,
    pub per: i32,
    pub total_count: i32,
}

/// `{ nodes, pagination }`: one page of a list.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(concrete(name = "UserPage", params(User)))]
#[graphql(concrete(name = "GroupPage", params(Group)))]
#[graphql(concrete(name = "TrainingCampaignPage", params(TrainingCampaign)))]
#[graphql(concrete(name = "EnrollmentPage", params(Enrollment)))]
#[graphql(concrete(name = "StorePurchasePage", params(StorePurchase)))]
#[graphql(concrete(name = "PhishingCampaignPage", params(PhishingCampaign)))]
#[graphql(concrete(name = "PhishingCampaignRunPage", params(PhishingCampaignRun)))]
#[graphql(concrete(name = "PhishingCampaignRecipientPage", params(PhishingCampaignRecipient)))]
#[graphql(concrete(name = "TemplateTopicPage", params(TemplateTopic)))]
#[graphql(concrete(name = "AccountPage", params(Account)))]
pub struct Page<T: OutputType> {
    pub nodes: Vec<T>,
    pub pagination: Pagination,
}

/// A payload error: `{ field placeholders reason recordId }` (plus a readable `message`).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Error")]
pub struct MutationError {
    pub field: Option<String>,
    pub placeholders: Option<Json<serde_json::Value>>,
    pub reason: String,
    pub record_id: Option<i32>,
    pub message: String,
}

impl MutationError {
    pub fn new(field: &str, reason: &str, record_id: Option<i32>, message: impl Into<String>) -> Self {
        MutationError {
            field: Some(field.to_string()),
            placeholders: None,
            reason: reason.to_string(),
            record_id,
            message: message.into(),
        }
    }

    pub fn not_found(field: &str, id: i32, what: &str) -> Self {
        let mut e = Self::new(field, "not_found", Some(id), format!("{what} {id} was not found"));
        e.placeholders = Some(Json(serde_json::json!({ "id": id })));
        e
    }

    pub fn too_long(field: &str, max: usize, record_id: Option<i32>) -> Self {
        let mut e =
            Self::new(field, "too_long", record_id, format!("{field} is too long (maximum is {max} characters)"));
        e.placeholders = Some(Json(serde_json::json!({ "count": max })));
        e
    }

    pub fn blank(field: &str) -> Self {
        Self::new(field, "blank", None, format!("{field} can't be blank"))
    }

    pub fn taken(field: &str, record_id: Option<i32>) -> Self {
        Self::new(field, "taken", record_id, format!("{field} has already been taken"))
    }
}

/// Checks a string against a maximum length (in characters).
pub(crate) fn check_len(
    errors: &mut Vec<MutationError>,
    field: &str,
    value: Option<&str>,
    max: usize,
    id: Option<i32>,
) {
    if value.is_some_and(|v| v.chars().count() > max) {
        errors.push(MutationError::too_long(field, max, id));
    }
}

/// `emailAliases`.
#[derive(SimpleObject, Clone, Debug)]
pub struct EmailAlias {
    pub id: i32,
    pub email: String,
    pub primary: bool,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// `securityRoles`.
#[derive(SimpleObject, Clone, Debug)]
pub struct SecurityRole {
    pub id: i32,
    pub name: String,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    pub user_count: i32,
}

/// A KSAT user. Status derives from `archived`; group membership lives here (`groupIds`).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct User {
    pub id: i32,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub employee_number: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub division: Option<String>,
    pub organization: Option<String>,
    pub location: Option<String>,
    pub manager_email: Option<String>,
    pub manager_name: Option<String>,
    pub phone_number: Option<String>,
    pub mobile_phone_number: Option<String>,
    pub extension: Option<String>,
    pub employee_start_date: Option<Date>,
    pub archived: bool,
    pub archived_at: Option<DateTime>,
    pub admin: bool,
    pub role: UserRole,
    pub current_ppp: f64,
    pub risk_score: f64,
    pub risk_booster: f64,
    pub custom_field1: Option<String>,
    pub custom_field2: Option<String>,
    pub custom_field3: Option<String>,
    pub custom_field4: Option<String>,
    pub custom_date1: Option<Date>,
    pub custom_date2: Option<Date>,
    pub language: Option<String>,
    pub time_zone: Option<TimeZones>,
    pub out_of_office_start: Option<Date>,
    pub out_of_office_end: Option<Date>,
    pub ldap_enabled: bool,
    pub saml_enabled: bool,
    pub mobile_app_enabled: bool,
    pub passless_enabled: bool,
    pub provisioning_managed: bool,
    pub last_sign_in_at: Option<DateTime>,
    pub confirmed_at: Option<DateTime>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    pub email_aliases: Vec<EmailAlias>,
    #[graphql(skip)]
    pub memberships: BTreeSet<i32>,
}

impl User {
    /// A user with only an id, an email and a creation time: no other attributes, no roles
    /// beyond `User`, English, active, never signed in, no aliases and no groups.
    pub fn new(id: i32, email: String, created: DateTime) -> User {
        User {
            id,
            email,
            first_name: None,
            last_name: None,
            employee_number: None,
            job_title: None,
            department: None,
            division: None,
            organization: None,
            location: None,
            manager_email: None,
            manager_name: None,
            phone_number: None,
            mobile_phone_number: None,
            extension: None,
            employee_start_date: None,
            archived: false,
            archived_at: None,
            admin: false,
            role: UserRole::User,
            current_ppp: 0.0,
            risk_score: 0.0,
            risk_booster: 0.0,
            custom_field1: None,
            custom_field2: None,
            custom_field3: None,
            custom_field4: None,
            custom_date1: None,
            custom_date2: None,
            language: Some("English - United States".to_string()),
            time_zone: None,
            out_of_office_start: None,
            out_of_office_end: None,
            ldap_enabled: false,
            saml_enabled: false,
            mobile_app_enabled: false,
            passless_enabled: false,
            provisioning_managed: false,
            last_sign_in_at: None,
            confirmed_at: None,
            created_at: created.clone(),
            updated_at: created,
            email_aliases: Vec::new(),
            memberships: BTreeSet::new(),
        }
    }
}

#[ComplexObject]
impl User {
    async fn display_name(&self) -> String {
        let name =
            [self.first_name.as_deref(), self.last_name.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
        if name.is_empty() { self.email.clone() } else { name }
    }

    async fn group_ids(&self) -> Vec<i32> {
        self.memberships.iter().copied().collect()
    }

    async fn groups(&self, ctx: &Context<'_>) -> Vec<Group> {
        let db = db(ctx);
        self.memberships.iter().filter_map(|g| db.groups.get(g).cloned()).collect()
    }

    async fn group_names_concat(&self, ctx: &Context<'_>) -> String {
        let db = db(ctx);
        self.memberships.iter().filter_map(|g| db.groups.get(g).map(|g| g.name.clone())).collect::<Vec<_>>().join(", ")
    }

    /// Admins must lose their admin functions before they can be archived.
    async fn archivable(&self) -> bool {
        !self.admin
    }

    async fn has_direct_reports(&self, ctx: &Context<'_>) -> bool {
        let db = db(ctx);
        db.users.values().any(|u| u.manager_email.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(&self.email)))
    }

    async fn out_of_office_until(&self) -> Option<Date> {
        self.out_of_office_end.clone()
    }

    async fn security_roles(&self) -> Vec<SecurityRole> {
        if !self.admin {
            return Vec::new();
        }
        vec![SecurityRole {
            id: 1,
            name: "Account Admin".to_string(),
            created_at: DateTime::seeded(0),
            updated_at: DateTime::seeded(0),
            user_count: 1,
        }]
    }

    async fn company_name(&self) -> &'static str {
        TENANT_NAME
    }

    async fn current_sign_in_ip(&self) -> Option<String> {
        None
    }

    async fn passless_expires_in(&self) -> Option<i32> {
        None
    }

    async fn user_url(&self) -> String {
        format!("https://training.knowbe4.com/ui/users/{}", self.id)
    }
}

/// A KSAT group. Members are the users whose `memberships` hold its id.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Group {
    pub id: i32,
    pub name: String,
    pub group_type: GroupTypes,
    pub status: GroupStatuses,
    pub risk_score: f64,
    pub risk_booster: f64,
    pub ldap_object_guid: Option<String>,
    pub user_phishing_locales: Vec<String>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

#[ComplexObject]
impl Group {
    async fn display_name(&self) -> String {
        self.name.clone()
    }

    async fn member_count(&self, ctx: &Context<'_>) -> i32 {
        count(db(ctx).members_of(self.id))
    }

    async fn account_id(&self, ctx: &Context<'_>) -> i32 {
        db(ctx).tenant_account_id
    }

    async fn account_name(&self) -> &'static str {
        TENANT_NAME
    }

    async fn account_name_with_domain(&self) -> String {
        format!("{TENANT_NAME} ({TENANT_DOMAIN})")
    }

    async fn has_campaign_runs(&self, ctx: &Context<'_>) -> bool {
        let db = db(ctx);
        db.phishing_campaigns
            .values()
            .any(|c| c.selected_groups.contains(&self.id) && db.runs.values().any(|r| r.campaign_id == c.id))
    }

    async fn security_roles(&self) -> Vec<SecurityRole> {
        Vec::new()
    }
}

/// A training campaign notification.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Notification")]
pub struct TrainingNotification {
    pub id: i32,
    pub message_type: NotificationMessageTypes,
    pub enabled: bool,
    pub offset_num_days: Option<i32>,
    pub delivery_method: Option<String>,
    pub training_campaign_id: i32,
    pub training_campaign_name: String,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// A training campaign; its users are those with enrollments in it.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct TrainingCampaign {
    pub id: i32,
    pub name: String,
    pub active: bool,
    pub status: TrainingCampaignStatuses,
    pub auto_enroll: bool,
    pub starts_at: Option<DateTime>,
    pub ends_at: Option<DateTime>,
    pub end_campaign_option: TrainingCampaignEnd,
    pub enrollment_duration: Option<i32>,
    pub enrollment_duration_type: Option<EnrollmentDurationTypes>,
    pub relative_duration: Option<String>,
    pub time_zone: Option<TimeZones>,
    pub allow_past_due_completions: bool,
    pub allow_surveys: bool,
    pub allow_survey_comments: bool,
    pub all_users: bool,
    pub selected_content: Vec<String>,
    pub selected_groups: Vec<i32>,
    pub notifications: Vec<TrainingNotification>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

#[ComplexObject]
impl TrainingCampaign {
    async fn groups(&self, ctx: &Context<'_>) -> Vec<Group> {
        let db = db(ctx);
        self.selected_groups.iter().filter_map(|g| db.groups.get(g).cloned()).collect()
    }

    async fn total_users(&self, ctx: &Context<'_>) -> i32 {
        let db = db(ctx);
        let users: BTreeSet<i32> =
            db.enrollments.values().filter(|e| e.campaign_id == self.id).map(|e| e.user_id).collect();
        count(users.iter())
    }

    async fn percent_complete(&self, ctx: &Context<'_>) -> f64 {
        let db = db(ctx);
        let (done, all) = db
            .enrollments
            .values()
            .filter(|e| e.campaign_id == self.id)
            .fold((0u32, 0u32), |(d, a), e| (d + u32::from(e.completed), a + 1));
        if all == 0 { 0.0 } else { (f64::from(done) * 1000.0 / f64::from(all)).round() / 10.0 }
    }

    async fn user_enrollments(&self, ctx: &Context<'_>, user_id: Option<i32>) -> Vec<Enrollment> {
        let db = db(ctx);
        db.enrollments
            .values()
            .filter(|e| e.campaign_id == self.id && user_id.is_none_or(|u| e.user_id == u))
            .cloned()
            .collect()
    }
}

/// A purchased training module.
#[derive(SimpleObject, Clone, Debug)]
pub struct PurchasedCourse {
    pub id: i32,
    pub title: String,
    pub description: Option<String>,
    pub assessment_type: Option<String>,
    pub polymorphic_id: String,
    pub duration: Option<i32>,
}

/// An uploaded policy.
#[derive(SimpleObject, Clone, Debug)]
pub struct Policy {
    pub id: i32,
    pub title: String,
    pub description: Option<String>,
    pub assessment_type: Option<String>,
    pub polymorphic_id: String,
    pub duration: Option<i32>,
}

/// A knowledge refresher.
#[derive(SimpleObject, Clone, Debug)]
pub struct KnowledgeRefresher {
    pub id: i32,
    pub title: String,
    pub description: Option<String>,
    pub assessment_type: Option<String>,
    pub polymorphic_id: String,
    pub duration: Option<i32>,
}

/// What an enrollment is for.
#[derive(Union, Clone, Debug)]
pub enum EnrollmentItem {
    PurchasedCourse(PurchasedCourse),
    Policy(Policy),
    KnowledgeRefresher(KnowledgeRefresher),
}

impl EnrollmentItem {
    pub fn type_name(&self) -> &'static str {
        match self {
            EnrollmentItem::PurchasedCourse(_) => "PurchasedCourse",
            EnrollmentItem::Policy(_) => "Policy",
            EnrollmentItem::KnowledgeRefresher(_) => "KnowledgeRefresher",
        }
    }
}

/// A store purchase (`storePurchases`).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct StorePurchase {
    pub id: i32,
    pub name: String,
    pub content_type: String,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    pub purchased_at: DateTime,
    pub hidden: bool,
    pub has_associated_soft_deleted_training_campaigns: bool,
    pub policy_location: Option<String>,
    pub policy_required: bool,
    pub purchased_course_id: i32,
    pub store_item_uuid: String,
    #[graphql(name = "purchasedCourse")]
    pub course: PurchasedCourse,
}

#[ComplexObject]
impl StorePurchase {
    async fn enrollment_count(&self, ctx: &Context<'_>) -> i32 {
        count(db(ctx).enrollments.values().filter(|e| e.store_purchase_id == Some(self.id)))
    }
}

/// A training enrollment of one user in one content item of a campaign.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Enrollment {
    pub id: i32,
    pub status: String,
    pub active: bool,
    pub completed: bool,
    pub completed_at: Option<DateTime>,
    pub completion_status: String,
    pub enrollment_item_type: String,
    pub expires_at: Option<DateTime>,
    pub force_passed: bool,
    pub past_due: bool,
    pub policy_acknowledged: bool,
    pub policy_acknowledged_at: Option<DateTime>,
    pub score: Option<f64>,
    pub time_spent_in_seconds: i32,
    pub started_at: Option<DateTime>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    pub store_purchase_id: Option<i32>,
    #[graphql(skip)]
    pub campaign_id: i32,
    #[graphql(skip)]
    pub user_id: i32,
    #[graphql(skip)]
    pub item: EnrollmentItem,
}

impl Enrollment {
    /// An enrollment of `(campaign, user)` in `(item, store purchase)`.
    pub fn new(
        id: i32,
        (campaign_id, user_id): (i32, i32),
        (item, store_purchase_id): (&EnrollmentItem, Option<i32>),
        status: &str,
        at: DateTime,
    ) -> Self {
        let completed = status == "Passed";
        Enrollment {
            id,
            status: status.to_string(),
            active: !completed,
            completed,
            completed_at: completed.then(|| at.clone()),
            completion_status: if completed { "completed" } else { "incomplete" }.to_string(),
            enrollment_item_type: item.type_name().to_string(),
            expires_at: None,
            force_passed: false,
            past_due: status == "Past Due",
            policy_acknowledged: completed && matches!(item, EnrollmentItem::Policy(_)),
            policy_acknowledged_at: None,
            score: completed.then_some(100.0),
            time_spent_in_seconds: if completed { 900 } else { 0 },
            started_at: (status != "Not Started").then(|| at.clone()),
            created_at: at.clone(),
            updated_at: at,
            store_purchase_id,
            campaign_id,
            user_id,
            item: item.clone(),
        }
    }
}

#[ComplexObject]
impl Enrollment {
    async fn enrollment_item(&self) -> EnrollmentItem {
        self.item.clone()
    }

    async fn total_time(&self) -> i32 {
        self.time_spent_in_seconds
    }

    async fn training_campaign(&self, ctx: &Context<'_>) -> Option<TrainingCampaign> {
        db(ctx).training_campaigns.get(&self.campaign_id).cloned()
    }

    async fn user(&self, ctx: &Context<'_>) -> Option<User> {
        db(ctx).users.get(&self.user_id).cloned()
    }
}

/// A phishing template topic.
#[derive(SimpleObject, Clone, Debug)]
pub struct TemplateTopic {
    pub id: i32,
    pub name: String,
    pub ordering: i32,
    pub template_count: i32,
    pub topic_type: TemplateTopicTypes,
    pub disabled_by_default: bool,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// A phishing domain.
#[derive(SimpleObject, Clone, Debug)]
pub struct PhishDomain {
    pub id: i32,
    pub name: String,
    pub active: bool,
    pub hidden: bool,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// A phishing campaign; its runs are the phishing security tests (PSTs).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct PhishingCampaign {
    pub id: i32,
    pub name: String,
    pub active: bool,
    pub campaign_type: PhishingCampaignTypes,
    pub frequency_period: FrequencyPeriods,
    pub next_run: Option<DateTime>,
    pub time_zone: Option<TimeZones>,
    pub all_users: bool,
    pub selected_groups: Vec<i32>,
    pub selected_template_topics: Vec<i32>,
    pub spread_emails: bool,
    pub sending_duration: Option<i32>,
    pub sending_duration_units: Option<DurationUnits>,
    pub tracking_duration: Option<i32>,
    pub tracking_duration_units: Option<DurationUnits>,
    pub business_days: Vec<i32>,
    pub business_hours_start_hour: Option<String>,
    pub business_hours_end_hour: Option<String>,
    pub hide_from_reports: bool,
    pub track_replies: bool,
    pub track_out_of_office_replies: bool,
    pub store_reply_content: bool,
    pub send_email_after_run: bool,
    pub rating: Vec<i32>,
    pub reply_domain_prefix: Option<String>,
    pub is_phishflip: bool,
    pub is_hide_locked: bool,
    pub is_sei_enabled: bool,
    pub localized_campaign: bool,
    pub template_selection: Option<String>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    #[graphql(skip)]
    pub clicked_group_id: Option<i32>,
    #[graphql(skip)]
    pub phish_domain_id: Option<i32>,
    #[graphql(skip)]
    pub reply_phish_domain_id: Option<i32>,
}

impl PhishingCampaign {
    /// An active one-time campaign with only a name and a creation time: no run scheduled, no
    /// groups or topics, tracked for 3 days, templates chosen by topic.
    pub fn new(id: i32, name: String, created: DateTime) -> PhishingCampaign {
        PhishingCampaign {
            id,
            name,
            active: true,
            campaign_type: PhishingCampaignTypes::Standard,
            frequency_period: FrequencyPeriods::Onetime,
            next_run: None,
            time_zone: None,
            all_users: false,
            selected_groups: Vec::new(),
            selected_template_topics: Vec::new(),
            spread_emails: false,
            sending_duration: None,
            sending_duration_units: None,
            tracking_duration: Some(3),
            tracking_duration_units: Some(DurationUnits::new("DAYS")),
            business_days: Vec::new(),
            business_hours_start_hour: None,
            business_hours_end_hour: None,
            hide_from_reports: false,
            track_replies: false,
            track_out_of_office_replies: false,
            store_reply_content: false,
            send_email_after_run: false,
            rating: Vec::new(),
            reply_domain_prefix: None,
            is_phishflip: false,
            is_hide_locked: false,
            is_sei_enabled: false,
            localized_campaign: false,
            template_selection: Some("TOPICS".to_string()),
            created_at: created.clone(),
            updated_at: created,
            clicked_group_id: None,
            phish_domain_id: None,
            reply_phish_domain_id: None,
        }
    }
}

#[ComplexObject]
impl PhishingCampaign {
    async fn groups(&self, ctx: &Context<'_>) -> Vec<Group> {
        let db = db(ctx);
        self.selected_groups.iter().filter_map(|g| db.groups.get(g).cloned()).collect()
    }

    async fn clicked_group(&self, ctx: &Context<'_>) -> Option<Group> {
        self.clicked_group_id.and_then(|g| db(ctx).groups.get(&g).cloned())
    }

    async fn template_topics(&self, ctx: &Context<'_>) -> Vec<TemplateTopic> {
        let db = db(ctx);
        self.selected_template_topics.iter().filter_map(|t| db.template_topics.get(t).cloned()).collect()
    }

    async fn phish_domain(&self, ctx: &Context<'_>) -> Option<PhishDomain> {
        self.phish_domain_id.and_then(|d| db(ctx).phish_domains.get(&d).cloned())
    }

    async fn reply_phish_domain(&self, ctx: &Context<'_>) -> Option<PhishDomain> {
        self.reply_phish_domain_id.and_then(|d| db(ctx).phish_domains.get(&d).cloned())
    }

    async fn is_recurring(&self) -> bool {
        self.frequency_period != FrequencyPeriods::Onetime
    }

    async fn last_run(&self, ctx: &Context<'_>) -> Option<PhishingCampaignRun> {
        let db = db(ctx);
        db.runs.values().rfind(|r| r.campaign_id == self.id).cloned()
    }

    async fn last_run_date(&self, ctx: &Context<'_>) -> Option<DateTime> {
        let db = db(ctx);
        db.runs.values().rfind(|r| r.campaign_id == self.id).and_then(|r| r.started_at.clone())
    }

    async fn phishing_campaign_run_count(&self, ctx: &Context<'_>) -> i32 {
        count(db(ctx).runs.values().filter(|r| r.campaign_id == self.id))
    }
}

/// One run (phishing security test) of a phishing campaign.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct PhishingCampaignRun {
    pub id: i32,
    pub status: PhishingCampaignRunStatuses,
    pub started_at: Option<DateTime>,
    pub completed_at: Option<DateTime>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    pub duration: Option<i32>,
    pub sending_duration: Option<i32>,
    pub email_template_id: Option<i32>,
    pub phish_domain: Option<String>,
    pub reply_domain_prefix: Option<String>,
    pub group_names: Vec<String>,
    pub campaign_non_recipients_count: i32,
    #[graphql(skip)]
    pub campaign_id: i32,
    #[graphql(skip)]
    pub group_ids: Vec<i32>,
}

impl PhishingCampaignRun {
    fn tally(&self, db: &Db, f: impl Fn(&PhishingCampaignRecipient) -> bool) -> i32 {
        count(db.recipients.values().filter(|r| r.run_id == self.id && f(r)))
    }
}

#[ComplexObject]
impl PhishingCampaignRun {
    async fn campaign(&self, ctx: &Context<'_>) -> Option<PhishingCampaign> {
        db(ctx).phishing_campaigns.get(&self.campaign_id).cloned()
    }

    async fn groups(&self, ctx: &Context<'_>) -> Vec<Group> {
        let db = db(ctx);
        self.group_ids.iter().filter_map(|g| db.groups.get(g).cloned()).collect()
    }

    async fn recipient_count(&self, ctx: &Context<'_>) -> i32 {
        self.tally(&db(ctx), |_| true)
    }

    async fn scheduled_count(&self, ctx: &Context<'_>) -> i32 {
        self.tally(&db(ctx), |_| true)
    }

    async fn total_scheduled(&self, ctx: &Context<'_>) -> i32 {
        self.tally(&db(ctx), |_| true)
    }

    async fn total_delivered(&self, ctx: &Context<'_>) -> i32 {
        self.tally(&db(ctx), |r| r.delivered)
    }

    async fn total_opened(&self, ctx: &Context<'_>) -> i32 {
        self.tally(&db(ctx), |r| r.opened)
    }

    async fn total_clicked(&self, ctx: &Context<'_>) -> i32 {
        self.tally(&db(ctx), |r| r.clicked)
    }

    async fn total_reported(&self, ctx: &Context<'_>) -> i32 {
        self.tally(&db(ctx), |r| r.reported)
    }

    async fn total_bounced(&self, ctx: &Context<'_>) -> i32 {
        self.tally(&db(ctx), |r| r.bounced)
    }

    async fn total_replied(&self, ctx: &Context<'_>) -> i32 {
        self.tally(&db(ctx), |r| r.replied)
    }

    async fn total_data_entered(&self, ctx: &Context<'_>) -> i32 {
        self.tally(&db(ctx), |r| r.data_entered)
    }

    async fn total_attachment_open(&self, ctx: &Context<'_>) -> i32 {
        self.tally(&db(ctx), |r| r.attachment_open)
    }

    async fn total_failed(&self) -> i32 {
        0
    }

    /// Share of recipients who clicked, in percent with one decimal.
    async fn phish_prone_percentage(&self, ctx: &Context<'_>) -> f64 {
        let db = db(ctx);
        let all = self.tally(&db, |_| true);
        let clicked = self.tally(&db, |r| r.clicked);
        if all == 0 { 0.0 } else { (f64::from(clicked) * 1000.0 / f64::from(all)).round() / 10.0 }
    }
}

/// One recipient of a phishing campaign run.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct PhishingCampaignRecipient {
    pub id: i32,
    pub email: String,
    pub scheduled_at: Option<DateTime>,
    pub delivered: bool,
    pub opened: bool,
    pub clicked: bool,
    pub clicked_count: i32,
    pub reported: bool,
    pub bounced: bool,
    pub bounce_reason: Option<String>,
    pub replied: bool,
    pub data_entered: bool,
    pub attachment_open: bool,
    pub macro_enabled: bool,
    pub qr_code_scanned: bool,
    pub called: bool,
    pub callback_data_entered: bool,
    pub dropped: bool,
    pub processed: bool,
    pub ip_address: Option<String>,
    pub ip_location: Option<String>,
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    #[graphql(skip)]
    pub run_id: i32,
    #[graphql(skip)]
    pub user_id: i32,
}

#[ComplexObject]
impl PhishingCampaignRecipient {
    async fn campaign_run(&self, ctx: &Context<'_>) -> Option<PhishingCampaignRun> {
        db(ctx).runs.get(&self.run_id).cloned()
    }

    async fn user(&self, ctx: &Context<'_>) -> Option<User> {
        db(ctx).users.get(&self.user_id).cloned()
    }
}

/// `accountOwner`.
#[derive(SimpleObject, Clone, Debug)]
pub struct AccountOwner {
    pub id: i32,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub confirmed_at: Option<DateTime>,
}

/// `subscriptionObject`.
#[derive(SimpleObject, Clone, Debug)]
pub struct Subscription {
    pub id: i32,
    pub friendly_name: String,
}

/// `purchasedSkus`.
#[derive(SimpleObject, Clone, Debug)]
pub struct PurchasedSku {
    pub sku_code: String,
    pub status: String,
}

/// `languageSettings`.
#[derive(SimpleObject, Clone, Debug)]
pub struct LanguageSettings {
    pub admin_locale: String,
}

/// A KnowBe4 account: the tenant's own (`account`) or one managed by the partner (`accounts`).
/// `userCount` counts active (non-archived) users unless `archivedUsers: true` was asked.
#[derive(SimpleObject, Clone, Debug)]
pub struct Account {
    pub id: i32,
    pub company_name: String,
    pub display_name: String,
    pub domain: String,
    pub archived: bool,
    pub billing_type: AccountBillingTypes,
    pub number_of_seats: i32,
    pub number_of_all_seats: i32,
    pub number_of_standard_seats: i32,
    pub user_count: i32,
    pub all_user_count: i32,
    pub pst_count: i32,
    pub purchased_course_count: i32,
    pub training_campaign_count: i32,
    pub created_at: DateTime,
    pub percentage_users_phished: f64,
    pub percentage_users_trained: f64,
    pub phish_prone_percentage: f64,
    pub latest_risk_score: f64,
    pub risk_score: f64,
    pub subscription_end_date: Option<Date>,
    pub partner_id: i32,
    pub partner_domain: String,
    pub partner_display_name: String,
    pub partner_access_expiration: Option<DateTime>,
    pub account_settings_flag_names: Vec<String>,
    pub has_free_pst: bool,
    pub has_free_prt: bool,
    pub has_free_spt: bool,
    pub has_free_qrt: bool,
    pub has_free_usb: bool,
    pub has_api: bool,
    pub has_apiv2: bool,
    pub has_phishing: bool,
    pub has_training: bool,
    pub has_only_stale_content: bool,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub time_zone: Option<TimeZones>,
    pub account_owner: AccountOwner,
    pub subscription_object: Subscription,
    pub purchased_skus: Vec<PurchasedSku>,
    pub language_settings: LanguageSettings,
    #[graphql(skip)]
    pub sim_active_users: i32,
    #[graphql(skip)]
    pub sim_archived_users: i32,
}
