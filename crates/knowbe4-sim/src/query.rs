//! The GraphQL query root: KSAT reads (`user`, `users`, `groups`, campaigns, enrollments, ...) and
//! the Partner API `accounts` query. Lists take `page` (from 1) and `per` (1..=1000; clients
//! page with 25 or more, but a connection check such as `users(per: 1, page: 1)` is answered,
//! as the real service answers it).

use std::cmp::Ordering;

use async_graphql::{Context, ErrorExtensions, Object, Result};

use crate::config::TokenKind;
use crate::model::*;
use crate::scalars::*;

/// The smallest and largest `per` KnowBe4 accepts.
pub(crate) const MIN_PER: i32 = 1;
pub(crate) const MAX_PER: i32 = 1000;
/// `per` when the client sends none.
pub(crate) const DEFAULT_PER: i32 = 25;

/// A GraphQL error with an `extensions.code`.
pub(crate) fn gql_error(code: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
}

fn kind(ctx: &Context<'_>) -> TokenKind {
    ctx.data_opt::<TokenKind>().copied().unwrap_or(TokenKind::ReadOnly)
}

/// KSAT operations refuse partner tokens (a partner reaches a tenant through a tenant token).
pub(crate) fn ksat(ctx: &Context<'_>) -> Result<()> {
    if kind(ctx) == TokenKind::Partner {
        return Err(gql_error(
            "FORBIDDEN",
            "A partner API token cannot call KSAT operations; use a KSAT Product API token of the account",
        ));
    }
    Ok(())
}

/// Mutations need a KSAT token with Read/Write scope.
pub(crate) fn write_access(ctx: &Context<'_>) -> Result<()> {
    ksat(ctx)?;
    if kind(ctx) != TokenKind::ReadWrite {
        return Err(gql_error(
            "FORBIDDEN",
            "This API token has Read Only scope; mutations need a token with Read/Write scope",
        ));
    }
    Ok(())
}

fn partner(ctx: &Context<'_>) -> Result<()> {
    if kind(ctx) != TokenKind::Partner {
        return Err(gql_error("FORBIDDEN", "accounts is a Partner API query and needs a partner API token"));
    }
    Ok(())
}

/// Validated `(page, per)`.
pub(crate) fn page_args(page: Option<i32>, per: Option<i32>) -> Result<(i32, i32)> {
    let page = page.unwrap_or(1);
    let per = per.unwrap_or(DEFAULT_PER);
    if !(MIN_PER..=MAX_PER).contains(&per) {
        return Err(gql_error("INVALID_ARGUMENT", format!("per must be between {MIN_PER} and {MAX_PER}, got {per}")));
    }
    if page < 1 {
        return Err(gql_error("INVALID_ARGUMENT", format!("page must be 1 or more, got {page}")));
    }
    Ok((page, per))
}

/// Cuts one page out of the matching items (cloning only that page).
pub(crate) fn paginate<T: Clone + async_graphql::OutputType>(items: &[&T], (page, per): (i32, i32)) -> Page<T> {
    let total = count(items.iter());
    let pages = if total == 0 { 0 } else { (total + per - 1) / per };
    let start = usize::try_from((page - 1).saturating_mul(per)).unwrap_or(usize::MAX);
    let per_us = usize::try_from(per).unwrap_or(0);
    let nodes = items.iter().skip(start).take(per_us).map(|t| (*t).clone()).collect();
    Page { nodes, pagination: Pagination { page, pages, per, total_count: total } }
}

fn contains_ci(hay: Option<&str>, needle: &str) -> bool {
    hay.is_some_and(|h| h.to_lowercase().contains(needle))
}

/// `status` strings of enrollments compared with a filter such as `IN_PROGRESS` or `"Passed"`.
fn same_status(stored: &str, filter: &str) -> bool {
    let norm = |s: &str| s.to_ascii_uppercase().replace([' ', '-'], "_");
    norm(stored) == norm(filter)
}

pub struct Query;

#[Object]
impl Query {
    /// One user by id; null if there is none.
    async fn user(&self, ctx: &Context<'_>, id: i32) -> Result<Option<User>> {
        ksat(ctx)?;
        Ok(db(ctx).users.get(&id).cloned())
    }

    /// One user by email (case-insensitive); null if there is none.
    async fn user_by_email(&self, ctx: &Context<'_>, email: String) -> Result<Option<User>> {
        ksat(ctx)?;
        Ok(db(ctx).user_by_email(&email).cloned())
    }

    /// Users, ACTIVE by default.
    #[allow(clippy::too_many_arguments)]
    async fn users(
        &self,
        ctx: &Context<'_>,
        page: Option<i32>,
        per: Option<i32>,
        status: Option<UserStatusFilters>,
        #[graphql(name = "type")] user_type: Option<UserTypes>,
        filter_groups: Option<Vec<i32>>,
        filter_no_groups: Option<bool>,
        managers_only: Option<bool>,
        group: Option<i32>,
        search: Option<String>,
    ) -> Result<Page<User>> {
        ksat(ctx)?;
        let args = page_args(page, per)?;
        let status = status.unwrap_or(UserStatusFilters::Active);
        let search = search.map(|s| s.to_lowercase());
        let db = db(ctx);
        let managers: std::collections::BTreeSet<String> = if managers_only == Some(true) {
            db.users.values().filter_map(|u| u.manager_email.as_ref().map(|m| m.to_lowercase())).collect()
        } else {
            Default::default()
        };
        let items: Vec<&User> = db
            .users
            .values()
            .filter(|u| match status {
                UserStatusFilters::Active => !u.archived,
                UserStatusFilters::Archived => u.archived,
                UserStatusFilters::All => true,
            })
            .filter(|u| match user_type.unwrap_or(UserTypes::All) {
                UserTypes::All => true,
                UserTypes::User => !u.admin && u.role == UserRole::User,
                UserTypes::Admin | UserTypes::AdminOrSr => u.admin,
                UserTypes::Student => u.role == UserRole::Student,
            })
            .filter(|u| filter_groups.as_ref().is_none_or(|gs| gs.iter().any(|g| u.memberships.contains(g))))
            .filter(|u| filter_no_groups != Some(true) || u.memberships.is_empty())
            .filter(|u| managers_only != Some(true) || managers.contains(&u.email.to_lowercase()))
            .filter(|u| group.is_none_or(|g| u.memberships.contains(&g)))
            .filter(|u| {
                search.as_deref().is_none_or(|s| {
                    contains_ci(Some(&u.email), s)
                        || contains_ci(u.first_name.as_deref(), s)
                        || contains_ci(u.last_name.as_deref(), s)
                })
            })
            .collect();
        Ok(paginate(&items, args))
    }

    /// One group by id; null if there is none.
    async fn group(&self, ctx: &Context<'_>, id: i32) -> Result<Option<Group>> {
        ksat(ctx)?;
        Ok(db(ctx).groups.get(&id).cloned())
    }

    /// Groups, ACTIVE by default; `all: true` returns every match on one page.
    #[allow(clippy::too_many_arguments)]
    async fn groups(
        &self,
        ctx: &Context<'_>,
        page: Option<i32>,
        per: Option<i32>,
        status: Option<GroupStatuses>,
        #[graphql(name = "type")] group_type: Option<GroupTypes>,
        search: Option<String>,
        all: Option<bool>,
        permission_scope: Option<PermissionScopes>,
    ) -> Result<Page<Group>> {
        ksat(ctx)?;
        let _ = permission_scope;
        let all = all == Some(true);
        let args = if all { (1, MAX_PER) } else { page_args(page, per)? };
        let status = status.unwrap_or(GroupStatuses::Active);
        let search = search.map(|s| s.to_lowercase());
        let db = db(ctx);
        let items: Vec<&Group> = db
            .groups
            .values()
            .filter(|g| status == GroupStatuses::All || g.status == status)
            .filter(|g| group_type.is_none_or(|t| g.group_type == t))
            .filter(|g| search.as_deref().is_none_or(|s| g.name.to_lowercase().contains(s)))
            .collect();
        let args = if all { (1, count(items.iter()).max(1)) } else { args };
        Ok(paginate(&items, args))
    }

    async fn training_campaign(&self, ctx: &Context<'_>, id: i32) -> Result<Option<TrainingCampaign>> {
        ksat(ctx)?;
        Ok(db(ctx).training_campaigns.get(&id).cloned())
    }

    /// Training campaigns; `filter` ACTIVE / INACTIVE / ALL (default ALL), `statuses` any of.
    async fn training_campaigns(
        &self,
        ctx: &Context<'_>,
        page: Option<i32>,
        per: Option<i32>,
        filter: Option<TrainingCampaignFilters>,
        statuses: Option<Vec<TrainingCampaignStatuses>>,
    ) -> Result<Page<TrainingCampaign>> {
        ksat(ctx)?;
        let args = page_args(page, per)?;
        let db = db(ctx);
        let items: Vec<&TrainingCampaign> = db
            .training_campaigns
            .values()
            .filter(|c| match filter.unwrap_or(TrainingCampaignFilters::All) {
                TrainingCampaignFilters::Active => c.active,
                TrainingCampaignFilters::Inactive => !c.active,
                TrainingCampaignFilters::All => true,
            })
            .filter(|c| statuses.as_ref().is_none_or(|s| s.is_empty() || s.contains(&c.status)))
            .collect();
        Ok(paginate(&items, args))
    }

    async fn enrollment(&self, ctx: &Context<'_>, id: i32) -> Result<Option<Enrollment>> {
        ksat(ctx)?;
        Ok(db(ctx).enrollments.get(&id).cloned())
    }

    /// Training enrollments, filtered by campaign, user, status or store purchase.
    #[allow(clippy::too_many_arguments)]
    async fn enrollments(
        &self,
        ctx: &Context<'_>,
        page: Option<i32>,
        per: Option<i32>,
        training_campaign_id: Option<i32>,
        user_id: Option<i32>,
        status: Option<EnrollmentStatuses>,
        store_purchase_id: Option<i32>,
    ) -> Result<Page<Enrollment>> {
        ksat(ctx)?;
        let args = page_args(page, per)?;
        let db = db(ctx);
        let items: Vec<&Enrollment> = db
            .enrollments
            .values()
            .filter(|e| training_campaign_id.is_none_or(|c| e.campaign_id == c))
            .filter(|e| user_id.is_none_or(|u| e.user_id == u))
            .filter(|e| status.as_ref().is_none_or(|s| same_status(&e.status, &s.0)))
            .filter(|e| store_purchase_id.is_none_or(|s| e.store_purchase_id == Some(s)))
            .collect();
        Ok(paginate(&items, args))
    }

    async fn store_purchases(
        &self,
        ctx: &Context<'_>,
        page: Option<i32>,
        per: Option<i32>,
    ) -> Result<Page<StorePurchase>> {
        ksat(ctx)?;
        let args = page_args(page, per)?;
        let db = db(ctx);
        let items: Vec<&StorePurchase> = db.store_purchases.values().collect();
        Ok(paginate(&items, args))
    }

    async fn template_topics(
        &self,
        ctx: &Context<'_>,
        page: Option<i32>,
        per: Option<i32>,
        types: Option<Vec<TemplateTopicTypes>>,
    ) -> Result<Page<TemplateTopic>> {
        ksat(ctx)?;
        let args = page_args(page, per)?;
        let db = db(ctx);
        let items: Vec<&TemplateTopic> = db
            .template_topics
            .values()
            .filter(|t| types.as_ref().is_none_or(|ts| ts.is_empty() || ts.contains(&t.topic_type)))
            .collect();
        Ok(paginate(&items, args))
    }

    async fn phishing_campaign(&self, ctx: &Context<'_>, id: i32) -> Result<Option<PhishingCampaign>> {
        ksat(ctx)?;
        Ok(db(ctx).phishing_campaigns.get(&id).cloned())
    }

    /// Phishing campaigns; `filter` (default ALL) and `type` (default ALL).
    async fn phishing_campaigns(
        &self,
        ctx: &Context<'_>,
        page: Option<i32>,
        per: Option<i32>,
        filter: Option<PhishingCampaignFilters>,
        #[graphql(name = "type")] campaign_type: Option<PhishingCampaignTypes>,
    ) -> Result<Page<PhishingCampaign>> {
        ksat(ctx)?;
        let args = page_args(page, per)?;
        let db = db(ctx);
        let items: Vec<&PhishingCampaign> = db
            .phishing_campaigns
            .values()
            .filter(|c| match filter.unwrap_or(PhishingCampaignFilters::All) {
                PhishingCampaignFilters::Active => c.active,
                PhishingCampaignFilters::Inactive => !c.active,
                PhishingCampaignFilters::Hidden => c.hide_from_reports,
                PhishingCampaignFilters::Phishflip => c.is_phishflip,
                PhishingCampaignFilters::All => true,
            })
            .filter(|c| match campaign_type.unwrap_or(PhishingCampaignTypes::All) {
                PhishingCampaignTypes::All => true,
                t => c.campaign_type == t,
            })
            .collect();
        Ok(paginate(&items, args))
    }

    async fn phishing_campaign_run(&self, ctx: &Context<'_>, id: i32) -> Result<Option<PhishingCampaignRun>> {
        ksat(ctx)?;
        Ok(db(ctx).runs.get(&id).cloned())
    }

    /// Runs of one phishing campaign (of all campaigns without `campaignId`).
    async fn phishing_campaign_runs(
        &self,
        ctx: &Context<'_>,
        campaign_id: Option<i32>,
        page: Option<i32>,
        per: Option<i32>,
    ) -> Result<Page<PhishingCampaignRun>> {
        ksat(ctx)?;
        let args = page_args(page, per)?;
        let db = db(ctx);
        let items: Vec<&PhishingCampaignRun> =
            db.runs.values().filter(|r| campaign_id.is_none_or(|c| r.campaign_id == c)).collect();
        Ok(paginate(&items, args))
    }

    /// Recipients of one phishing campaign run (of all runs without `campaignRunId`).
    async fn phishing_campaign_recipients(
        &self,
        ctx: &Context<'_>,
        campaign_run_id: Option<i32>,
        page: Option<i32>,
        per: Option<i32>,
    ) -> Result<Page<PhishingCampaignRecipient>> {
        ksat(ctx)?;
        let args = page_args(page, per)?;
        let db = db(ctx);
        let items: Vec<&PhishingCampaignRecipient> =
            db.recipients.values().filter(|r| campaign_run_id.is_none_or(|c| r.run_id == c)).collect();
        Ok(paginate(&items, args))
    }

    /// KSAT token: the token's own account. Partner token: the managed account `id` (null if the
    /// partner does not manage it).
    async fn account(&self, ctx: &Context<'_>, id: Option<i32>) -> Result<Option<Account>> {
        let db = db(ctx);
        if kind(ctx) == TokenKind::Partner {
            return Ok(id.and_then(|id| db.account_view(id, false)));
        }
        if id.is_some_and(|id| id != db.tenant_account_id) {
            return Ok(None);
        }
        Ok(db.account_view(db.tenant_account_id, false))
    }

    /// Partner API: the accounts the partner manages, with seats and user counts.
    #[allow(clippy::too_many_arguments)]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        per: i32,
        page: i32,
        partner_id: Option<i32>,
        status: Option<AccountStatuses>,
        billing_type: Option<AccountBillingTypes>,
        search: Option<String>,
        archived_users: Option<bool>,
        sort_field: Option<AccountSortFields>,
        sort_direction: Option<SortDirections>,
        other_partners_accounts: Option<AccountPartnerInclusions>,
        cursor: Option<String>,
    ) -> Result<Page<Account>> {
        partner(ctx)?;
        let _ = (other_partners_accounts, cursor);
        let args = page_args(Some(page), Some(per))?;
        let search = search.map(|s| s.to_lowercase());
        let db = db(ctx);
        let include_archived = archived_users == Some(true);
        let mut views: Vec<Account> = db
            .accounts
            .keys()
            .filter_map(|id| db.account_view(*id, include_archived))
            .filter(|a| partner_id.is_none_or(|p| a.partner_id == p))
            .filter(|a| match status.unwrap_or(AccountStatuses::All) {
                AccountStatuses::All => true,
                AccountStatuses::Active => !a.archived,
                AccountStatuses::Archived => a.archived,
            })
            .filter(|a| match billing_type.unwrap_or(AccountBillingTypes::Any) {
                AccountBillingTypes::Any => true,
                t => a.billing_type == t,
            })
            .filter(|a| {
                search
                    .as_deref()
                    .is_none_or(|s| a.company_name.to_lowercase().contains(s) || a.domain.to_lowercase().contains(s))
            })
            .collect();
        if let Some(field) = sort_field {
            let cmp = |a: &Account, b: &Account| -> Ordering {
                match field {
                    AccountSortFields::Organization => a.company_name.cmp(&b.company_name),
                    AccountSortFields::DateCreated => a.created_at.cmp(&b.created_at),
                    AccountSortFields::Seats => a.number_of_seats.cmp(&b.number_of_seats),
                    AccountSortFields::Users => a.user_count.cmp(&b.user_count),
                    AccountSortFields::PhishProne => a.phish_prone_percentage.total_cmp(&b.phish_prone_percentage),
                    AccountSortFields::Psts => a.pst_count.cmp(&b.pst_count),
                }
                .then(a.id.cmp(&b.id))
            };
            views.sort_by(cmp);
            if sort_direction == Some(SortDirections::Descending) {
                views.reverse();
            }
        }
        let refs: Vec<&Account> = views.iter().collect();
        Ok(paginate(&refs, args))
    }
}
