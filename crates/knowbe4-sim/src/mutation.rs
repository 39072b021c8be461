//! The GraphQL mutation root: KSAT writes with `{ node | nodes, errors }` payloads. Business rule
//! violations (unknown ids, name limits, duplicate emails, non-CONSOLE groups, archived users)
//! come back in the payload `errors` list with HTTP 200, and then nothing is changed.

use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::{Context, InputObject, Json, Object, Result, SimpleObject};

use crate::model::*;
use crate::query::{gql_error, write_access};
use crate::scalars::*;
use crate::server::Shared;

/// Per-request flags a resolver can raise for the HTTP layer.
#[derive(Default)]
pub(crate) struct RequestFlags {
    /// A bulk membership call was too large: answer 504 instead of the GraphQL response.
    pub gateway_timeout: AtomicBool,
}

/// Longest name of a group (KnowBe4 rejects 129 characters with `too_long`).
pub(crate) const MAX_GROUP_NAME: usize = 128;
/// Longest value of a user text field or custom field (256 is rejected with `too_long`).
pub(crate) const MAX_FIELD: usize = 255;

macro_rules! payload {
    ($(#[$m:meta])* $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(SimpleObject, Default)]
        pub struct $name {
            $(pub $field: $ty,)*
            pub errors: Vec<MutationError>,
        }
    };
}

payload!(UserCreatePayload { node: Option<User> });
payload!(UserEditPayload { node: Option<User> });
payload!(UserArchivePayload { node: Option<Vec<User>> });
payload!(UserUnarchivePayload { node: Option<Vec<User>> });
payload!(UserAddToGroupsPayload { node: Option<Vec<User>> });
payload!(UserDeleteMembershipsPayload { node: Option<Vec<User>> });
payload!(GroupCreatePayload { node: Option<Group> });
payload!(GroupArchivePayload { nodes: Option<Vec<Group>> });
payload!(GroupDeletePayload { nodes: Option<Vec<Group>> });
payload!(TrainingCampaignCreatePayload { node: Option<TrainingCampaign> });
payload!(TrainingCampaignEditPayload { node: Option<TrainingCampaign> });
payload!(TrainingCampaignClosePayload { node: Option<TrainingCampaign> });
payload!(TrainingCampaignDeletePayload { node: Option<bool> });
payload!(TrainingCampaignAddUserPayload { node: Option<bool> });
payload!(TrainingCampaignRemoveUserPayload { node: Option<bool>, removed: Option<bool> });
payload!(PhishingCampaignCreatePayload { node: Option<PhishingCampaign> });
payload!(PhishingCampaignEditPayload { node: Option<PhishingCampaign> });
payload!(PhishingCampaignDeactivatePayload { node: Option<PhishingCampaign> });
payload!(PhishingCampaignDeletePayload { node: Option<PhishingCampaign> });
payload!(PhishingCampaignRunStopPayload { node: Option<PhishingCampaignRun> });
payload!(PhishingCampaignRunDeletePayload { node: Option<PhishingCampaignRun> });

/// `userEdit(attributes:)`.
#[derive(InputObject, Default)]
pub struct UserAttributes {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub employee_number: Option<String>,
    pub employee_start_date: Option<Date>,
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
    pub language: Option<String>,
    pub time_zone: Option<TimeZones>,
    pub out_of_office_start: Option<Date>,
    pub out_of_office_end: Option<Date>,
    pub custom_field1: Option<String>,
    pub custom_field2: Option<String>,
    pub custom_field3: Option<String>,
    pub custom_field4: Option<String>,
    pub custom_date1: Option<Date>,
    pub custom_date2: Option<Date>,
    pub role: Option<UserRole>,
    pub ldap_enabled: Option<bool>,
    pub saml_enabled: Option<bool>,
}

/// `groupCreate(attributes:)`.
#[derive(InputObject)]
pub struct GroupAttributes {
    pub name: String,
    pub group_type: Option<GroupTypes>,
    pub security_roles: Option<Vec<i32>>,
}

/// A training campaign notification setting.
#[derive(InputObject)]
#[graphql(name = "NotificationAttributes")]
pub struct NotificationInput {
    pub id: Option<i32>,
    pub message_type: NotificationMessageTypes,
    pub enabled: Option<bool>,
    pub offset_num_days: Option<i32>,
    pub reschedule_offset: Option<i32>,
    pub email_template_id: Option<i32>,
    pub admin_email_template_id: Option<i32>,
    pub manager_email_template_id: Option<i32>,
    pub delivery_method: Option<DeliveryMethods>,
    pub fallback_email: Option<bool>,
    pub timestamp: Option<Json<serde_json::Value>>,
}

/// `trainingCampaignCreate/Edit(attributes:)`.
#[derive(InputObject, Default)]
pub struct TrainingCampaignAttributes {
    pub name: Option<String>,
    pub start_campaign_at_date: Option<Date>,
    pub start_campaign_at_time: Option<String>,
    pub end_campaign_at_date: Option<Date>,
    pub end_campaign_at_time: Option<String>,
    pub auto_enroll: Option<bool>,
    pub time_zone: Option<TimeZones>,
    pub allow_past_due_completions: Option<bool>,
    pub enrollment_duration: Option<i32>,
    pub enrollment_duration_type: Option<EnrollmentDurationTypes>,
    pub allow_surveys: Option<bool>,
    pub allow_survey_comments: Option<bool>,
    pub all_users: Option<bool>,
    pub selected_content: Option<Vec<String>>,
    pub selected_groups: Option<Vec<i32>>,
    pub notifications: Option<Vec<NotificationInput>>,
    pub reset_auto_enrollments: Option<bool>,
    pub track_scores: Option<bool>,
    pub remove_passed_from_groups: Option<Vec<i32>>,
    pub add_passed_to_groups: Option<Vec<i32>>,
}

/// `phishingCampaignCreate/Edit(attributes:)`.
#[derive(InputObject, Default)]
pub struct PhishingCampaignAttributes {
    pub name: Option<String>,
    pub campaign_type: Option<PhishingCampaignTypes>,
    pub frequency_period: Option<FrequencyPeriods>,
    pub next_run: Option<DateTime>,
    pub next_run_date: Option<Date>,
    pub next_run_time: Option<String>,
    pub time_zone: Option<TimeZones>,
    pub all_users: Option<bool>,
    pub selected_groups: Option<Vec<i32>>,
    pub selected_template_topics: Option<Vec<i32>>,
    pub selected_template_categories: Option<Vec<i32>>,
    pub spread_emails: Option<bool>,
    pub sending_duration: Option<i32>,
    pub sending_duration_units: Option<DurationUnits>,
    pub tracking_duration: Option<i32>,
    pub tracking_duration_units: Option<DurationUnits>,
    pub business_days: Option<Vec<i32>>,
    pub business_hours_start_hour: Option<String>,
    pub business_hours_end_hour: Option<String>,
    pub clicked_group_id: Option<i32>,
    pub email_template_id: Option<i32>,
    pub landing_page_id: Option<i32>,
    pub phish_domain_id: Option<i32>,
    pub reply_phish_domain_id: Option<i32>,
    pub reply_domain_prefix: Option<String>,
    pub hide_from_reports: Option<bool>,
    pub localized_campaign: Option<bool>,
    pub rating: Option<Vec<i32>>,
    pub send_email_after_run: Option<bool>,
    pub store_reply_content: Option<bool>,
    pub track_replies: Option<bool>,
    pub track_out_of_office_replies: Option<bool>,
}

fn bulk_guard(ctx: &Context<'_>, ids: usize) -> Result<()> {
    let limit = ctx.data_unchecked::<std::sync::Arc<Shared>>().config.bulk_timeout_size;
    if ids > limit {
        if let Some(flags) = ctx.data_opt::<std::sync::Arc<RequestFlags>>() {
            flags.gateway_timeout.store(true, Ordering::SeqCst);
        }
        return Err(gql_error("GATEWAY_TIMEOUT", "Gateway Timeout"));
    }
    Ok(())
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn set_opt<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// Turns empty strings into "no value" for optional text fields.
fn text(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn missing_groups(db: &Db, ids: &[i32], field: &str, errors: &mut Vec<MutationError>) {
    for id in ids {
        if !db.groups.contains_key(id) {
            errors.push(MutationError::not_found(field, *id, "Group"));
        }
    }
}

/// Enrolls a user in the active auto-enroll campaigns that target them.
fn auto_enroll(db: &mut Db, user_id: i32, now: &DateTime) {
    let Some(user) = db.users.get(&user_id) else { return };
    if user.archived {
        return;
    }
    let memberships = user.memberships.clone();
    let campaigns: Vec<i32> = db
        .training_campaigns
        .values()
        .filter(|c| c.auto_enroll && c.active && c.status != TrainingCampaignStatuses::Created)
        .filter(|c| c.all_users || c.selected_groups.iter().any(|g| memberships.contains(g)))
        .map(|c| c.id)
        .collect();
    for c in campaigns {
        if !db.is_enrolled(c, user_id) {
            db.enroll(c, user_id, now);
        }
    }
}

fn start_of(date: Option<&Date>, time: Option<&str>, fallback: &DateTime) -> DateTime {
    match date {
        Some(d) => {
            let time = time.filter(|t| t.len() >= 4).unwrap_or("00:00");
            let hhmm: String = time.chars().take(5).collect();
            DateTime::parse_str(&format!("{}T{}:00Z", d.0, hhmm))
                .or_else(|| DateTime::parse_str(&d.0))
                .unwrap_or_else(|| fallback.clone())
        }
        None => fallback.clone(),
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Creates a user (top-level arguments, not an `attributes` object).
    #[allow(clippy::too_many_arguments)]
    async fn user_create(
        &self,
        ctx: &Context<'_>,
        email: String,
        first_name: Option<String>,
        last_name: Option<String>,
        job_title: Option<String>,
        employee_number: Option<String>,
        department: Option<String>,
        division: Option<String>,
        organization: Option<String>,
        location: Option<String>,
        manager_email: Option<String>,
        manager_name: Option<String>,
        phone_number: Option<String>,
    ) -> Result<UserCreatePayload> {
        write_access(ctx)?;
        let email = email.trim().to_string();
        let mut db = db(ctx);
        let mut errors = Vec::new();
        if email.is_empty() {
            errors.push(MutationError::blank("email"));
        } else if !valid_email(&email) {
            errors.push(MutationError::new("email", "invalid", None, "email is invalid"));
        } else if let Some(existing) = db.user_by_email(&email) {
            errors.push(MutationError::taken("email", Some(existing.id)));
        }
        for (field, value) in [
            ("email", Some(&email)),
            ("firstName", first_name.as_ref()),
            ("lastName", last_name.as_ref()),
            ("jobTitle", job_title.as_ref()),
            ("employeeNumber", employee_number.as_ref()),
            ("department", department.as_ref()),
        ] {
            check_len(&mut errors, field, value.map(String::as_str), MAX_FIELD, None);
        }
        if !errors.is_empty() {
            return Ok(UserCreatePayload { errors, ..Default::default() });
        }
        let id = db.next("user");
        let now = DateTime::now();
        let user = User {
            first_name: text(first_name),
            last_name: text(last_name),
            employee_number: text(employee_number),
            job_title: text(job_title),
            department: text(department),
            division: text(division),
            organization: text(organization),
            location: text(location),
            manager_email: text(manager_email),
            manager_name: text(manager_name),
            phone_number: text(phone_number),
            ..User::new(id, email, now.clone())
        };
        db.users.insert(id, user);
        auto_enroll(&mut db, id, &now);
        Ok(UserCreatePayload { node: db.users.get(&id).cloned(), errors })
    }

    /// Edits a user's attributes.
    async fn user_edit(&self, ctx: &Context<'_>, user_id: i32, attributes: UserAttributes) -> Result<UserEditPayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let mut errors = Vec::new();
        if !db.users.contains_key(&user_id) {
            errors.push(MutationError::not_found("userId", user_id, "User"));
            return Ok(UserEditPayload { errors, ..Default::default() });
        }
        let a = attributes;
        if let Some(email) = a.email.as_deref().map(str::trim) {
            if email.is_empty() {
                errors.push(MutationError::blank("email"));
            } else if !valid_email(email) {
                errors.push(MutationError::new("email", "invalid", Some(user_id), "email is invalid"));
            } else if let Some(other) = db.user_by_email(email).filter(|u| u.id != user_id) {
                errors.push(MutationError::taken("email", Some(other.id)));
            }
        }
        for (field, value) in [
            ("email", &a.email),
            ("firstName", &a.first_name),
            ("lastName", &a.last_name),
            ("employeeNumber", &a.employee_number),
            ("jobTitle", &a.job_title),
            ("department", &a.department),
            ("division", &a.division),
            ("organization", &a.organization),
            ("location", &a.location),
            ("managerEmail", &a.manager_email),
            ("managerName", &a.manager_name),
            ("phoneNumber", &a.phone_number),
            ("mobilePhoneNumber", &a.mobile_phone_number),
            ("extension", &a.extension),
            ("customField1", &a.custom_field1),
            ("customField2", &a.custom_field2),
            ("customField3", &a.custom_field3),
            ("customField4", &a.custom_field4),
        ] {
            check_len(&mut errors, field, value.as_deref(), MAX_FIELD, Some(user_id));
        }
        if !errors.is_empty() {
            return Ok(UserEditPayload { errors, ..Default::default() });
        }
        let Some(u) = db.users.get_mut(&user_id) else {
            return Ok(UserEditPayload::default());
        };
        set(&mut u.email, a.email.map(|e| e.trim().to_string()));
        for (slot, value) in [
            (&mut u.first_name, a.first_name),
            (&mut u.last_name, a.last_name),
            (&mut u.employee_number, a.employee_number),
            (&mut u.job_title, a.job_title),
            (&mut u.department, a.department),
            (&mut u.division, a.division),
            (&mut u.organization, a.organization),
            (&mut u.location, a.location),
            (&mut u.manager_email, a.manager_email),
            (&mut u.manager_name, a.manager_name),
            (&mut u.phone_number, a.phone_number),
            (&mut u.mobile_phone_number, a.mobile_phone_number),
            (&mut u.extension, a.extension),
            (&mut u.language, a.language),
            (&mut u.custom_field1, a.custom_field1),
            (&mut u.custom_field2, a.custom_field2),
            (&mut u.custom_field3, a.custom_field3),
            (&mut u.custom_field4, a.custom_field4),
        ] {
            // An empty string clears the field, as in the console.
            if let Some(v) = value {
                *slot = text(Some(v));
            }
        }
        set_opt(&mut u.employee_start_date, a.employee_start_date);
        set_opt(&mut u.time_zone, a.time_zone);
        set_opt(&mut u.out_of_office_start, a.out_of_office_start);
        set_opt(&mut u.out_of_office_end, a.out_of_office_end);
        set_opt(&mut u.custom_date1, a.custom_date1);
        set_opt(&mut u.custom_date2, a.custom_date2);
        if let Some(role) = a.role {
            u.role = role;
            u.admin = role == UserRole::Admin;
        }
        set(&mut u.ldap_enabled, a.ldap_enabled);
        set(&mut u.saml_enabled, a.saml_enabled);
        u.updated_at = DateTime::now();
        Ok(UserEditPayload { node: Some(u.clone()), errors })
    }

    /// Archives users (they stop counting as licensed seats). Admins cannot be archived.
    async fn user_archive(&self, ctx: &Context<'_>, user_ids: Vec<i32>) -> Result<UserArchivePayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let mut errors = Vec::new();
        for id in &user_ids {
            match db.users.get(id) {
                None => errors.push(MutationError::not_found("userIds", *id, "User")),
                Some(u) if u.admin => errors.push(MutationError::new(
                    "userIds",
                    "not_archivable",
                    Some(*id),
                    "admins must lose their admin functions before they can be archived",
                )),
                Some(_) => {}
            }
        }
        if !errors.is_empty() {
            return Ok(UserArchivePayload { errors, ..Default::default() });
        }
        let now = DateTime::now();
        let mut nodes = Vec::new();
        for id in &user_ids {
            if let Some(u) = db.users.get_mut(id) {
                if !u.archived {
                    u.archived = true;
                    u.archived_at = Some(now.clone());
                    u.updated_at = now.clone();
                }
                nodes.push(u.clone());
            }
        }
        Ok(UserArchivePayload { node: Some(nodes), errors })
    }

    /// Unarchives users.
    async fn user_unarchive(&self, ctx: &Context<'_>, user_ids: Vec<i32>) -> Result<UserUnarchivePayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let errors: Vec<MutationError> = user_ids
            .iter()
            .filter(|id| !db.users.contains_key(id))
            .map(|id| MutationError::not_found("userIds", *id, "User"))
            .collect();
        if !errors.is_empty() {
            return Ok(UserUnarchivePayload { errors, ..Default::default() });
        }
        let now = DateTime::now();
        let mut nodes = Vec::new();
        for id in &user_ids {
            if let Some(u) = db.users.get_mut(id) {
                if u.archived {
                    u.archived = false;
                    u.archived_at = None;
                    u.updated_at = now.clone();
                }
                nodes.push(u.clone());
            }
        }
        Ok(UserUnarchivePayload { node: Some(nodes), errors })
    }

    /// Adds users to groups. Only CONSOLE groups accept manual members; archived users cannot be
    /// added. More than `bulk_timeout_size` user ids time out (HTTP 504) and change nothing.
    async fn user_add_to_groups(
        &self,
        ctx: &Context<'_>,
        user_ids: Vec<i32>,
        group_ids: Vec<i32>,
    ) -> Result<UserAddToGroupsPayload> {
        write_access(ctx)?;
        bulk_guard(ctx, user_ids.len())?;
        let mut db = db(ctx);
        let mut errors = Vec::new();
        if user_ids.is_empty() {
            errors.push(MutationError::blank("userIds"));
        }
        if group_ids.is_empty() {
            errors.push(MutationError::blank("groupIds"));
        }
        for id in &user_ids {
            match db.users.get(id) {
                None => errors.push(MutationError::not_found("userIds", *id, "User")),
                Some(u) if u.archived => {
                    errors.push(MutationError::new("userIds", "archived", Some(*id), format!("User {id} is archived")))
                }
                Some(_) => {}
            }
        }
        for id in &group_ids {
            check_manual_group(&db, *id, "groupIds", &mut errors);
        }
        if !errors.is_empty() {
            return Ok(UserAddToGroupsPayload { errors, ..Default::default() });
        }
        let now = DateTime::now();
        for id in &user_ids {
            if let Some(u) = db.users.get_mut(id) {
                u.memberships.extend(group_ids.iter().copied());
                u.updated_at = now.clone();
            }
            auto_enroll(&mut db, *id, &now);
        }
        let nodes = user_ids.iter().filter_map(|id| db.users.get(id).cloned()).collect();
        Ok(UserAddToGroupsPayload { node: Some(nodes), errors })
    }

    /// Removes users from one CONSOLE group. More than `bulk_timeout_size` user ids time out
    /// (HTTP 504) and change nothing.
    async fn user_delete_memberships(
        &self,
        ctx: &Context<'_>,
        user_ids: Vec<i32>,
        group_id: i32,
    ) -> Result<UserDeleteMembershipsPayload> {
        write_access(ctx)?;
        bulk_guard(ctx, user_ids.len())?;
        let mut db = db(ctx);
        let mut errors = Vec::new();
        if user_ids.is_empty() {
            errors.push(MutationError::blank("userIds"));
        }
        for id in &user_ids {
            if !db.users.contains_key(id) {
                errors.push(MutationError::not_found("userIds", *id, "User"));
            }
        }
        check_manual_group(&db, group_id, "groupId", &mut errors);
        if !errors.is_empty() {
            return Ok(UserDeleteMembershipsPayload { errors, ..Default::default() });
        }
        let now = DateTime::now();
        let mut nodes = Vec::new();
        for id in &user_ids {
            if let Some(u) = db.users.get_mut(id) {
                if u.memberships.remove(&group_id) {
                    u.updated_at = now.clone();
                }
                nodes.push(u.clone());
            }
        }
        Ok(UserDeleteMembershipsPayload { node: Some(nodes), errors })
    }

    /// Creates a group (CONSOLE unless `groupType: SMART`); names are 1..=128 characters and unique.
    async fn group_create(&self, ctx: &Context<'_>, attributes: GroupAttributes) -> Result<GroupCreatePayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let name = attributes.name.trim().to_string();
        let group_type = attributes.group_type.unwrap_or(GroupTypes::Console);
        let mut errors = Vec::new();
        if name.is_empty() {
            errors.push(MutationError::blank("name"));
        }
        check_len(&mut errors, "name", Some(&name), MAX_GROUP_NAME, None);
        if let Some(g) = db.groups.values().find(|g| g.name.eq_ignore_ascii_case(&name)) {
            errors.push(MutationError::taken("name", Some(g.id)));
        }
        if group_type == GroupTypes::AdiManaged {
            errors.push(MutationError::new(
                "groupType",
                "invalid",
                None,
                "ADI_MANAGED groups are created by directory sync, not by the API",
            ));
        }
        if !errors.is_empty() {
            return Ok(GroupCreatePayload { errors, ..Default::default() });
        }
        let id = db.next("group");
        let now = DateTime::now();
        let group = Group {
            id,
            name,
            group_type,
            status: GroupStatuses::Active,
            risk_score: 0.0,
            risk_booster: 0.0,
            ldap_object_guid: None,
            user_phishing_locales: Vec::new(),
            created_at: now.clone(),
            updated_at: now,
        };
        db.groups.insert(id, group.clone());
        Ok(GroupCreatePayload { node: Some(group), errors })
    }

    /// Archives (`archive: true`, the default) or unarchives (`archive: false`) groups.
    async fn group_archive(
        &self,
        ctx: &Context<'_>,
        archive: Option<bool>,
        ids: Vec<i32>,
    ) -> Result<GroupArchivePayload> {
        write_access(ctx)?;
        let archive = archive.unwrap_or(true);
        let mut db = db(ctx);
        let mut errors = Vec::new();
        missing_groups(&db, &ids, "ids", &mut errors);
        if !errors.is_empty() {
            return Ok(GroupArchivePayload { errors, ..Default::default() });
        }
        let now = DateTime::now();
        let status = if archive { GroupStatuses::Archived } else { GroupStatuses::Active };
        let mut nodes = Vec::new();
        for id in &ids {
            if let Some(g) = db.groups.get_mut(id) {
                if g.status != status {
                    g.status = status;
                    g.updated_at = now.clone();
                }
                nodes.push(g.clone());
            }
        }
        Ok(GroupArchivePayload { nodes: Some(nodes), errors })
    }

    /// Deletes groups permanently (memberships go with them).
    async fn group_delete(&self, ctx: &Context<'_>, ids: Vec<i32>) -> Result<GroupDeletePayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let mut errors = Vec::new();
        missing_groups(&db, &ids, "ids", &mut errors);
        if !errors.is_empty() {
            return Ok(GroupDeletePayload { errors, ..Default::default() });
        }
        let mut nodes = Vec::new();
        for id in &ids {
            if let Some(g) = db.groups.remove(id) {
                nodes.push(g);
            }
            for u in db.users.values_mut() {
                u.memberships.remove(id);
            }
            for c in db.training_campaigns.values_mut() {
                c.selected_groups.retain(|g| g != id);
            }
            for c in db.phishing_campaigns.values_mut() {
                c.selected_groups.retain(|g| g != id);
            }
        }
        Ok(GroupDeletePayload { nodes: Some(nodes), errors })
    }

    /// Creates a training campaign; one that has started enrolls its users at once.
    async fn training_campaign_create(
        &self,
        ctx: &Context<'_>,
        attributes: TrainingCampaignAttributes,
        end_campaign_option: TrainingCampaignEnd,
    ) -> Result<TrainingCampaignCreatePayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let a = attributes;
        let mut errors = Vec::new();
        let name = a.name.as_deref().map(str::trim).unwrap_or_default().to_string();
        if name.is_empty() {
            errors.push(MutationError::blank("name"));
        }
        check_len(&mut errors, "name", Some(&name), MAX_FIELD, None);
        validate_training(&db, &a, end_campaign_option, true, &mut errors);
        if !errors.is_empty() {
            return Ok(TrainingCampaignCreatePayload { errors, ..Default::default() });
        }
        let id = db.next("training_campaign");
        let now = DateTime::now();
        let mut campaign = TrainingCampaign {
            id,
            name,
            active: true,
            status: TrainingCampaignStatuses::Created,
            auto_enroll: false,
            starts_at: None,
            ends_at: None,
            end_campaign_option,
            enrollment_duration: None,
            enrollment_duration_type: None,
            relative_duration: None,
            time_zone: None,
            allow_past_due_completions: false,
            allow_surveys: false,
            allow_survey_comments: false,
            all_users: false,
            selected_content: Vec::new(),
            selected_groups: Vec::new(),
            notifications: Vec::new(),
            created_at: now.clone(),
            updated_at: now.clone(),
        };
        apply_training(&mut db, &mut campaign, a, Some(end_campaign_option), &now);
        db.training_campaigns.insert(id, campaign);
        start_training_if_due(&mut db, id, &now);
        Ok(TrainingCampaignCreatePayload { node: db.training_campaigns.get(&id).cloned(), errors })
    }

    /// Edits a training campaign.
    async fn training_campaign_edit(
        &self,
        ctx: &Context<'_>,
        id: i32,
        attributes: TrainingCampaignAttributes,
        end_campaign_option: Option<TrainingCampaignEnd>,
    ) -> Result<TrainingCampaignEditPayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let mut errors = Vec::new();
        let Some(mut campaign) = db.training_campaigns.get(&id).cloned() else {
            errors.push(MutationError::not_found("id", id, "TrainingCampaign"));
            return Ok(TrainingCampaignEditPayload { errors, ..Default::default() });
        };
        let a = attributes;
        if let Some(name) = a.name.as_deref().map(str::trim) {
            if name.is_empty() {
                errors.push(MutationError::blank("name"));
            }
            check_len(&mut errors, "name", Some(name), MAX_FIELD, Some(id));
        }
        let end = end_campaign_option.unwrap_or(campaign.end_campaign_option);
        validate_training(&db, &a, end, false, &mut errors);
        if end == TrainingCampaignEnd::SpecifyDate && a.end_campaign_at_date.is_none() && campaign.ends_at.is_none() {
            errors.push(MutationError::blank("endCampaignAtDate"));
        }
        if !errors.is_empty() {
            return Ok(TrainingCampaignEditPayload { errors, ..Default::default() });
        }
        let now = DateTime::now();
        apply_training(&mut db, &mut campaign, a, end_campaign_option, &now);
        campaign.updated_at = now.clone();
        db.training_campaigns.insert(id, campaign);
        start_training_if_due(&mut db, id, &now);
        Ok(TrainingCampaignEditPayload { node: db.training_campaigns.get(&id).cloned(), errors })
    }

    /// Closes a training campaign (no more enrollments).
    async fn training_campaign_close(&self, ctx: &Context<'_>, id: i32) -> Result<TrainingCampaignClosePayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let Some(c) = db.training_campaigns.get_mut(&id) else {
            let errors = vec![MutationError::not_found("id", id, "TrainingCampaign")];
            return Ok(TrainingCampaignClosePayload { errors, ..Default::default() });
        };
        c.status = TrainingCampaignStatuses::Closed;
        c.active = false;
        c.updated_at = DateTime::now();
        Ok(TrainingCampaignClosePayload { node: Some(c.clone()), errors: Vec::new() })
    }

    /// Deletes training campaigns and their enrollments; `node` is true on success.
    async fn training_campaign_delete(
        &self,
        ctx: &Context<'_>,
        ids: Vec<i32>,
    ) -> Result<TrainingCampaignDeletePayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let errors: Vec<MutationError> = ids
            .iter()
            .filter(|id| !db.training_campaigns.contains_key(id))
            .map(|id| MutationError::not_found("ids", *id, "TrainingCampaign"))
            .collect();
        if !errors.is_empty() {
            return Ok(TrainingCampaignDeletePayload { node: Some(false), errors });
        }
        for id in &ids {
            db.training_campaigns.remove(id);
            db.enrollments.retain(|_, e| e.campaign_id != *id);
        }
        Ok(TrainingCampaignDeletePayload { node: Some(true), errors })
    }

    /// Enrolls one user in a training campaign; `node` is true on success.
    async fn training_campaign_add_user(
        &self,
        ctx: &Context<'_>,
        training_campaign_id: i32,
        user_id: i32,
    ) -> Result<TrainingCampaignAddUserPayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let mut errors = Vec::new();
        match db.training_campaigns.get(&training_campaign_id) {
            None => {
                errors.push(MutationError::not_found("trainingCampaignId", training_campaign_id, "TrainingCampaign"))
            }
            Some(c) if matches!(c.status, TrainingCampaignStatuses::Closed | TrainingCampaignStatuses::Completed) => {
                errors.push(MutationError::new(
                    "trainingCampaignId",
                    "closed",
                    Some(training_campaign_id),
                    "the training campaign is closed",
                ))
            }
            Some(_) => {}
        }
        match db.users.get(&user_id) {
            None => errors.push(MutationError::not_found("userId", user_id, "User")),
            Some(u) if u.archived => errors.push(MutationError::new(
                "userId",
                "archived",
                Some(user_id),
                format!("User {user_id} is archived"),
            )),
            Some(_) => {}
        }
        if errors.is_empty() && db.is_enrolled(training_campaign_id, user_id) {
            errors.push(MutationError::taken("userId", Some(user_id)));
        }
        if !errors.is_empty() {
            return Ok(TrainingCampaignAddUserPayload { node: Some(false), errors });
        }
        db.enroll(training_campaign_id, user_id, &DateTime::now());
        Ok(TrainingCampaignAddUserPayload { node: Some(true), errors })
    }

    /// Removes one user's enrollments from a training campaign.
    async fn training_campaign_remove_user(
        &self,
        ctx: &Context<'_>,
        training_campaign_id: i32,
        user_id: i32,
    ) -> Result<TrainingCampaignRemoveUserPayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let mut errors = Vec::new();
        if !db.training_campaigns.contains_key(&training_campaign_id) {
            errors.push(MutationError::not_found("trainingCampaignId", training_campaign_id, "TrainingCampaign"));
        }
        if !db.users.contains_key(&user_id) {
            errors.push(MutationError::not_found("userId", user_id, "User"));
        } else if errors.is_empty() && !db.is_enrolled(training_campaign_id, user_id) {
            errors.push(MutationError::new(
                "userId",
                "not_found",
                Some(user_id),
                format!("User {user_id} is not enrolled in training campaign {training_campaign_id}"),
            ));
        }
        if !errors.is_empty() {
            return Ok(TrainingCampaignRemoveUserPayload { node: Some(false), removed: Some(false), errors });
        }
        db.enrollments.retain(|_, e| !(e.campaign_id == training_campaign_id && e.user_id == user_id));
        Ok(TrainingCampaignRemoveUserPayload { node: Some(true), removed: Some(true), errors })
    }

    /// Creates a phishing campaign (active, first run at `nextRun`).
    async fn phishing_campaign_create(
        &self,
        ctx: &Context<'_>,
        attributes: PhishingCampaignAttributes,
    ) -> Result<PhishingCampaignCreatePayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let a = attributes;
        let mut errors = Vec::new();
        let name = a.name.as_deref().map(str::trim).unwrap_or_default().to_string();
        if name.is_empty() {
            errors.push(MutationError::blank("name"));
        }
        check_len(&mut errors, "name", Some(&name), MAX_FIELD, None);
        if a.frequency_period.is_none() {
            errors.push(MutationError::blank("frequencyPeriod"));
        }
        if a.all_users != Some(true) && a.selected_groups.as_ref().is_none_or(Vec::is_empty) {
            errors.push(MutationError::blank("selectedGroups"));
        }
        validate_phishing(&db, &a, &mut errors);
        if !errors.is_empty() {
            return Ok(PhishingCampaignCreatePayload { errors, ..Default::default() });
        }
        let id = db.next("phishing_campaign");
        let now = DateTime::now();
        let mut campaign = PhishingCampaign::new(id, name, now.clone());
        apply_phishing(&mut campaign, a);
        if campaign.next_run.is_none() {
            campaign.next_run = Some(now);
        }
        db.phishing_campaigns.insert(id, campaign.clone());
        Ok(PhishingCampaignCreatePayload { node: Some(campaign), errors })
    }

    /// Edits a phishing campaign.
    async fn phishing_campaign_edit(
        &self,
        ctx: &Context<'_>,
        id: i32,
        attributes: PhishingCampaignAttributes,
    ) -> Result<PhishingCampaignEditPayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let mut errors = Vec::new();
        if !db.phishing_campaigns.contains_key(&id) {
            errors.push(MutationError::not_found("id", id, "PhishingCampaign"));
            return Ok(PhishingCampaignEditPayload { errors, ..Default::default() });
        }
        let a = attributes;
        if let Some(name) = a.name.as_deref().map(str::trim) {
            if name.is_empty() {
                errors.push(MutationError::blank("name"));
            }
            check_len(&mut errors, "name", Some(name), MAX_FIELD, Some(id));
        }
        validate_phishing(&db, &a, &mut errors);
        if !errors.is_empty() {
            return Ok(PhishingCampaignEditPayload { errors, ..Default::default() });
        }
        let Some(c) = db.phishing_campaigns.get_mut(&id) else {
            return Ok(PhishingCampaignEditPayload::default());
        };
        apply_phishing(c, a);
        c.updated_at = DateTime::now();
        Ok(PhishingCampaignEditPayload { node: Some(c.clone()), errors })
    }

    /// Deactivates (`deactivate: true`, the default) or activates (`false`) a phishing campaign.
    async fn phishing_campaign_deactivate(
        &self,
        ctx: &Context<'_>,
        id: i32,
        deactivate: bool,
    ) -> Result<PhishingCampaignDeactivatePayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let Some(c) = db.phishing_campaigns.get_mut(&id) else {
            let errors = vec![MutationError::not_found("id", id, "PhishingCampaign")];
            return Ok(PhishingCampaignDeactivatePayload { errors, ..Default::default() });
        };
        c.active = !deactivate;
        c.updated_at = DateTime::now();
        Ok(PhishingCampaignDeactivatePayload { node: Some(c.clone()), errors: Vec::new() })
    }

    /// Deletes a phishing campaign with its runs.
    async fn phishing_campaign_delete(&self, ctx: &Context<'_>, id: i32) -> Result<PhishingCampaignDeletePayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let Some(c) = db.phishing_campaigns.remove(&id) else {
            let errors = vec![MutationError::not_found("id", id, "PhishingCampaign")];
            return Ok(PhishingCampaignDeletePayload { errors, ..Default::default() });
        };
        let runs: Vec<i32> = db.runs.values().filter(|r| r.campaign_id == id).map(|r| r.id).collect();
        for r in runs {
            db.runs.remove(&r);
            db.recipients.retain(|_, x| x.run_id != r);
        }
        Ok(PhishingCampaignDeletePayload { node: Some(c), errors: Vec::new() })
    }

    /// Stops a running phishing campaign run.
    async fn phishing_campaign_run_stop(
        &self,
        ctx: &Context<'_>,
        campaign_id: i32,
        run_id: i32,
    ) -> Result<PhishingCampaignRunStopPayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let mut errors = Vec::new();
        check_run(&db, campaign_id, run_id, &mut errors);
        let finished = |r: &&PhishingCampaignRun| {
            matches!(r.status, PhishingCampaignRunStatuses::Completed | PhishingCampaignRunStatuses::Stopped)
        };
        if errors.is_empty() && db.runs.get(&run_id).filter(finished).is_some() {
            errors.push(MutationError::new(
                "runId",
                "not_running",
                Some(run_id),
                format!("phishing campaign run {run_id} is not running"),
            ));
        }
        if !errors.is_empty() {
            return Ok(PhishingCampaignRunStopPayload { errors, ..Default::default() });
        }
        let Some(r) = db.runs.get_mut(&run_id) else {
            return Ok(PhishingCampaignRunStopPayload::default());
        };
        let now = DateTime::now();
        r.status = PhishingCampaignRunStatuses::Stopped;
        r.completed_at = Some(now.clone());
        r.updated_at = now;
        Ok(PhishingCampaignRunStopPayload { node: Some(r.clone()), errors })
    }

    /// Deletes a phishing campaign run and its recipients.
    async fn phishing_campaign_run_delete(
        &self,
        ctx: &Context<'_>,
        campaign_id: i32,
        run_id: i32,
    ) -> Result<PhishingCampaignRunDeletePayload> {
        write_access(ctx)?;
        let mut db = db(ctx);
        let mut errors = Vec::new();
        check_run(&db, campaign_id, run_id, &mut errors);
        if !errors.is_empty() {
            return Ok(PhishingCampaignRunDeletePayload { errors, ..Default::default() });
        }
        let run = db.runs.remove(&run_id);
        db.recipients.retain(|_, x| x.run_id != run_id);
        Ok(PhishingCampaignRunDeletePayload { node: run, errors })
    }
}

/// Only existing, active CONSOLE groups take manual membership changes.
fn check_manual_group(db: &Db, id: i32, field: &str, errors: &mut Vec<MutationError>) {
    match db.groups.get(&id) {
        None => errors.push(MutationError::not_found(field, id, "Group")),
        Some(g) if g.group_type != GroupTypes::Console => errors.push(MutationError::new(
            field,
            "not_console_group",
            Some(id),
            format!("Group {id} is not a console group; its members cannot be changed manually"),
        )),
        Some(g) if g.status == GroupStatuses::Archived => {
            errors.push(MutationError::new(field, "archived", Some(id), format!("Group {id} is archived")))
        }
        Some(_) => {}
    }
}

fn check_run(db: &Db, campaign_id: i32, run_id: i32, errors: &mut Vec<MutationError>) {
    if !db.phishing_campaigns.contains_key(&campaign_id) {
        errors.push(MutationError::not_found("campaignId", campaign_id, "PhishingCampaign"));
    } else if db.runs.get(&run_id).is_none_or(|r| r.campaign_id != campaign_id) {
        errors.push(MutationError::not_found("runId", run_id, "PhishingCampaignRun"));
    }
}

fn validate_training(
    db: &Db,
    a: &TrainingCampaignAttributes,
    end: TrainingCampaignEnd,
    create: bool,
    errors: &mut Vec<MutationError>,
) {
    if let Some(groups) = &a.selected_groups {
        missing_groups(db, groups, "selectedGroups", errors);
    }
    for field in [&a.remove_passed_from_groups, &a.add_passed_to_groups].into_iter().flatten() {
        missing_groups(db, field, "selectedGroups", errors);
    }
    if let Some(content) = &a.selected_content {
        for item in content {
            if db.content(item).is_none() {
                let record = item.split_once(':').and_then(|(_, id)| id.trim().parse().ok());
                let mut e =
                    MutationError::new("selectedContent", "not_found", record, format!("content {item} was not found"));
                e.placeholders = Some(Json(serde_json::json!({ "id": item })));
                errors.push(e);
            }
        }
    }
    if create {
        if a.selected_content.as_ref().is_none_or(Vec::is_empty) {
            errors.push(MutationError::blank("selectedContent"));
        }
        if a.all_users != Some(true) && a.selected_groups.as_ref().is_none_or(Vec::is_empty) {
            errors.push(MutationError::blank("selectedGroups"));
        }
        if end == TrainingCampaignEnd::SpecifyDate && a.end_campaign_at_date.is_none() {
            errors.push(MutationError::blank("endCampaignAtDate"));
        }
    }
}

fn apply_training(
    db: &mut Db,
    c: &mut TrainingCampaign,
    a: TrainingCampaignAttributes,
    end: Option<TrainingCampaignEnd>,
    now: &DateTime,
) {
    if let Some(name) = a.name {
        c.name = name.trim().to_string();
    }
    if a.start_campaign_at_date.is_some() || c.starts_at.is_none() {
        c.starts_at = Some(start_of(a.start_campaign_at_date.as_ref(), a.start_campaign_at_time.as_deref(), now));
    }
    set(&mut c.end_campaign_option, end);
    if a.end_campaign_at_date.is_some() {
        c.ends_at = Some(start_of(a.end_campaign_at_date.as_ref(), a.end_campaign_at_time.as_deref(), now));
    }
    if c.end_campaign_option == TrainingCampaignEnd::NoEndDate {
        c.ends_at = None;
    }
    set(&mut c.auto_enroll, a.auto_enroll);
    set_opt(&mut c.time_zone, a.time_zone);
    set(&mut c.allow_past_due_completions, a.allow_past_due_completions);
    set_opt(&mut c.enrollment_duration, a.enrollment_duration);
    set_opt(&mut c.enrollment_duration_type, a.enrollment_duration_type);
    if let (Some(n), Some(t)) = (c.enrollment_duration, c.enrollment_duration_type) {
        let unit = match t {
            EnrollmentDurationTypes::Days => "day",
            EnrollmentDurationTypes::Weeks => "week",
            EnrollmentDurationTypes::Months => "month",
        };
        c.relative_duration = Some(format!("{n} {unit}{}", if n == 1 { "" } else { "s" }));
    }
    set(&mut c.allow_surveys, a.allow_surveys);
    set(&mut c.allow_survey_comments, a.allow_survey_comments);
    set(&mut c.all_users, a.all_users);
    set(&mut c.selected_content, a.selected_content);
    set(&mut c.selected_groups, a.selected_groups);
    if let Some(notifications) = a.notifications {
        c.notifications = notifications
            .into_iter()
            .map(|n| TrainingNotification {
                id: n.id.unwrap_or_else(|| db.next("notification")),
                message_type: n.message_type,
                enabled: n.enabled.unwrap_or(true),
                offset_num_days: n.offset_num_days,
                delivery_method: n.delivery_method.map(|d| d.0),
                training_campaign_id: c.id,
                training_campaign_name: c.name.clone(),
                created_at: now.clone(),
                updated_at: now.clone(),
            })
            .collect();
    }
}

/// A campaign whose start has come moves to IN_PROGRESS and enrolls its targeted users.
fn start_training_if_due(db: &mut Db, id: i32, now: &DateTime) {
    let Some(c) = db.training_campaigns.get(&id) else { return };
    let due = c.starts_at.as_ref().is_none_or(|s| s <= now);
    if !(c.active
        && due
        && matches!(c.status, TrainingCampaignStatuses::Created | TrainingCampaignStatuses::InProgress))
    {
        return;
    }
    let users = db.targeted_users(c.all_users, &c.selected_groups);
    if let Some(c) = db.training_campaigns.get_mut(&id) {
        c.status = TrainingCampaignStatuses::InProgress;
    }
    for u in users {
        if !db.is_enrolled(id, u) {
            db.enroll(id, u, now);
        }
    }
}

fn validate_phishing(db: &Db, a: &PhishingCampaignAttributes, errors: &mut Vec<MutationError>) {
    if let Some(groups) = &a.selected_groups {
        missing_groups(db, groups, "selectedGroups", errors);
    }
    if let Some(g) = a.clicked_group_id {
        missing_groups(db, &[g], "clickedGroupId", errors);
    }
    for t in a.selected_template_topics.iter().flatten() {
        if !db.template_topics.contains_key(t) {
            errors.push(MutationError::not_found("selectedTemplateTopics", *t, "TemplateTopic"));
        }
    }
    for (field, id) in [("phishDomainId", a.phish_domain_id), ("replyPhishDomainId", a.reply_phish_domain_id)] {
        if let Some(id) = id.filter(|id| !db.phish_domains.contains_key(id)) {
            errors.push(MutationError::not_found(field, id, "PhishDomain"));
        }
    }
    if a.business_days.iter().flatten().any(|d| !(0..=6).contains(d)) {
        errors.push(MutationError::new("businessDays", "invalid", None, "business days are 0 (Sunday) to 6"));
    }
}

fn apply_phishing(c: &mut PhishingCampaign, a: PhishingCampaignAttributes) {
    if let Some(name) = a.name {
        c.name = name.trim().to_string();
    }
    set(&mut c.campaign_type, a.campaign_type.filter(|t| *t != PhishingCampaignTypes::All));
    set(&mut c.frequency_period, a.frequency_period);
    if let Some(next) = a.next_run {
        c.next_run = Some(next);
    } else if let Some(date) = &a.next_run_date {
        let fallback = DateTime::now();
        c.next_run = Some(start_of(Some(date), a.next_run_time.as_deref(), &fallback));
    }
    set_opt(&mut c.time_zone, a.time_zone);
    set(&mut c.all_users, a.all_users);
    set(&mut c.selected_groups, a.selected_groups);
    set(&mut c.selected_template_topics, a.selected_template_topics);
    set(&mut c.spread_emails, a.spread_emails);
    set_opt(&mut c.sending_duration, a.sending_duration);
    set_opt(&mut c.sending_duration_units, a.sending_duration_units);
    set_opt(&mut c.tracking_duration, a.tracking_duration);
    set_opt(&mut c.tracking_duration_units, a.tracking_duration_units);
    set(&mut c.business_days, a.business_days);
    set_opt(&mut c.business_hours_start_hour, a.business_hours_start_hour);
    set_opt(&mut c.business_hours_end_hour, a.business_hours_end_hour);
    set_opt(&mut c.clicked_group_id, a.clicked_group_id);
    set_opt(&mut c.phish_domain_id, a.phish_domain_id);
    set_opt(&mut c.reply_phish_domain_id, a.reply_phish_domain_id);
    set_opt(&mut c.reply_domain_prefix, a.reply_domain_prefix);
    set(&mut c.hide_from_reports, a.hide_from_reports);
    set(&mut c.localized_campaign, a.localized_campaign);
    set(&mut c.rating, a.rating);
    set(&mut c.send_email_after_run, a.send_email_after_run);
    set(&mut c.store_reply_content, a.store_reply_content);
    set(&mut c.track_replies, a.track_replies);
    set(&mut c.track_out_of_office_replies, a.track_out_of_office_replies);
    let _ = (a.selected_template_categories, a.email_template_id, a.landing_page_id);
}
