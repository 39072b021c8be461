//! Deterministic seed data: users (`first.last{N}@example.com`, some archived), groups (mostly
//! CONSOLE, at least one SMART), training content, training and phishing campaigns with runs and
//! recipients, template topics, and partner accounts. The same seed gives the same data.

use std::collections::BTreeSet;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sim_net::seed::{Person, person, pick};

use crate::config::SimConfig;
use crate::model::*;
use crate::scalars::*;

const TITLES: &[&str] = &[
    "Engineer",
    "Senior Engineer",
    "Account Executive",
    "Accountant",
    "HR Partner",
    "Support Specialist",
    "Product Manager",
    "Analyst",
    "Designer",
    "Office Manager",
];
const DEPARTMENTS: &[&str] = &["Engineering", "Sales", "Finance", "People", "Support", "Product"];
const LOCATIONS: &[&str] = &["New York", "Tampa", "London", "Berlin", "Toronto", "Sydney"];
const COURSES: &[&str] = &[
    "KnowBe4 Security Awareness Training",
    "Phishing Fundamentals",
    "Password Basics",
    "Social Engineering Red Flags",
    "Mobile Device Security",
    "GDPR Essentials",
];
const POLICIES: &[&str] = &["Acceptable Use Policy", "Information Security Policy"];
const TOPICS: &[&str] = &[
    "Banking and Finance",
    "Social Media",
    "Online Services",
    "IT",
    "Human Resources",
    "Holidays",
    "Current Events",
    "Healthcare",
];
const COMPANIES: &[(&str, &str)] = &[
    ("Acme Corporation", "acme.example"),
    ("Globex LLC", "globex.example"),
    ("Initech", "initech.example"),
    ("Umbrella Health", "umbrella.example"),
    ("Hooli", "hooli.example"),
    ("Vandelay Industries", "vandelay.example"),
    ("Stark Logistics", "stark.example"),
    ("Wayne Foods", "wayne.example"),
];

fn score(rng: &mut SmallRng, max: f64) -> f64 {
    (rng.random_range(0.0..max) * 10.0).round() / 10.0
}

fn n32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Builds the whole data set for a configuration.
pub(crate) fn build(config: &SimConfig) -> Db {
    let mut rng = SmallRng::seed_from_u64(config.seed);
    let mut db = Db::default();
    seed_users(&mut db, &mut rng, config.seed_users);
    seed_groups(&mut db, &mut rng, config.seed_groups);
    seed_content(&mut db);
    seed_training(&mut db, &mut rng, config.seed_campaigns);
    seed_phishing(&mut db, &mut rng, config.seed_campaigns);
    if config.seed_edge_cases {
        seed_edge_cases(&mut db);
    }
    seed_accounts(&mut db, &mut rng, config.seed_accounts);
    db
}

fn seed_users(db: &mut Db, rng: &mut SmallRng, n: usize) {
    let mut admin_email = None;
    for i in 1..=n {
        let id = db.next("user");
        let Person { first, last, email } = person(rng, i);
        let admin = i == 1;
        let archived = !admin && rng.random_bool(0.1);
        let created = DateTime::seeded(i64::try_from(i).unwrap_or(0) * 3_600);
        let (manager_email, manager_name) = match &admin_email {
            Some((e, name)) if rng.random_bool(0.5) => (Some(String::clone(e)), Some(String::clone(name))),
            _ => (None, None),
        };
        if admin {
            admin_email = Some((email.clone(), format!("{first} {last}")));
        }
        let user = User {
            first_name: Some(first.to_string()),
            last_name: Some(last.to_string()),
            employee_number: Some(format!("E{i:05}")),
            job_title: Some(if admin { "IT Director" } else { pick(rng, TITLES) }.to_string()),
            department: Some(pick(rng, DEPARTMENTS).to_string()),
            division: None,
            organization: Some(TENANT_NAME.to_string()),
            location: Some(pick(rng, LOCATIONS).to_string()),
            manager_email,
            manager_name,
            phone_number: Some(format!("+1 555 01{:02}", i % 100)),
            employee_start_date: Some(Date(DateTime::seeded(-86_400 * (30 + (i as i64 % 900))).date())),
            archived,
            archived_at: archived.then(|| DateTime::seeded(86_400 * 30 + i as i64 * 60)),
            admin,
            role: if admin { UserRole::Admin } else { UserRole::User },
            current_ppp: score(rng, 60.0),
            risk_score: score(rng, 100.0),
            time_zone: Some(TimeZones::new("EASTERN_TIME_US_CANADA")),
            last_sign_in_at: (!archived).then(|| DateTime::seeded(86_400 * 40 + i as i64 * 97)),
            confirmed_at: Some(created.clone()),
            email_aliases: vec![EmailAlias {
                id: id * 10,
                email: email.clone(),
                primary: true,
                created_at: created.clone(),
                updated_at: created.clone(),
            }],
            ..User::new(id, email, created)
        };
        db.users.insert(id, user);
    }
}

fn seed_groups(db: &mut Db, rng: &mut SmallRng, n: usize) {
    const NAMED: &[&str] = &["Engineering", "Sales", "Finance", "Legacy Contractors"];
    let mut console = Vec::new();
    for i in 1..=n {
        let id = db.next("group");
        let smart = n >= 2 && i == n;
        let adi = !smart && i >= 8 && i % 8 == 0;
        let (name, group_type) = if smart {
            ("High Risk Users".to_string(), GroupTypes::Smart)
        } else if adi {
            (format!("Directory Group {i}"), GroupTypes::AdiManaged)
        } else {
            (NAMED.get(i - 1).map_or_else(|| format!("Team {i}"), |s| (*s).to_string()), GroupTypes::Console)
        };
        let archived = i == 4 && n >= 5;
        let created = DateTime::seeded(86_400 * i as i64);
        db.groups.insert(
            id,
            Group {
                id,
                name,
                group_type,
                status: if archived { GroupStatuses::Archived } else { GroupStatuses::Active },
                risk_score: score(rng, 100.0),
                risk_booster: 0.0,
                ldap_object_guid: adi.then(|| format!("00000000-0000-4000-8000-{id:012}")),
                user_phishing_locales: Vec::new(),
                created_at: created.clone(),
                updated_at: created,
            },
        );
        if group_type == GroupTypes::Console && !archived {
            console.push(id);
        }
        if smart {
            // Criteria: a risk score of 60 or more.
            for u in db.users.values_mut().filter(|u| u.risk_score >= 60.0) {
                u.memberships.insert(id);
            }
        }
        if adi {
            for u in db.users.values_mut().filter(|u| u.id % 3 == 0) {
                u.memberships.insert(id);
            }
        }
    }
    if console.is_empty() {
        return;
    }
    for u in db.users.values_mut() {
        let first = console[rng.random_range(0..console.len())];
        u.memberships.insert(first);
        if rng.random_bool(0.3) {
            u.memberships.insert(console[rng.random_range(0..console.len())]);
        }
    }
}

fn seed_content(db: &mut Db) {
    for (i, title) in COURSES.iter().enumerate() {
        let id = 601 + n32(i);
        let course_id = 1_201 + n32(i);
        let at = DateTime::seeded(86_400 * 3 + i as i64 * 60);
        db.store_purchases.insert(
            id,
            StorePurchase {
                id,
                name: (*title).to_string(),
                content_type: "Store Purchase".to_string(),
                created_at: at.clone(),
                updated_at: at.clone(),
                purchased_at: at,
                hidden: false,
                has_associated_soft_deleted_training_campaigns: false,
                policy_location: None,
                policy_required: false,
                purchased_course_id: course_id,
                store_item_uuid: format!("5f1c0000-0000-4000-8000-{course_id:012}"),
                course: PurchasedCourse {
                    id: course_id,
                    title: (*title).to_string(),
                    description: Some(format!("{title} (simulated module)")),
                    assessment_type: Some("QUIZ".to_string()),
                    polymorphic_id: format!("PurchasedCourse:{course_id}"),
                    duration: Some(15 + 5 * n32(i)),
                },
            },
        );
    }
    for (i, title) in POLICIES.iter().enumerate() {
        let id = 651 + n32(i);
        db.policies.insert(
            id,
            Policy {
                id,
                title: (*title).to_string(),
                description: None,
                assessment_type: None,
                polymorphic_id: format!("Policy:{id}"),
                duration: Some(5),
            },
        );
    }
    db.knowledge_refreshers.insert(
        701,
        KnowledgeRefresher {
            id: 701,
            title: "Security Awareness Refresher".to_string(),
            description: None,
            assessment_type: Some("QUIZ".to_string()),
            polymorphic_id: "KnowledgeRefresher:701".to_string(),
            duration: Some(3),
        },
    );
    for (i, name) in TOPICS.iter().enumerate() {
        let id = 11 + n32(i);
        db.template_topics.insert(
            id,
            TemplateTopic {
                id,
                name: (*name).to_string(),
                ordering: n32(i) + 1,
                template_count: 12 + 3 * n32(i),
                topic_type: TemplateTopicTypes::new(if i % 3 == 2 { "SYSTEM" } else { "STANDARD" }),
                disabled_by_default: false,
                created_at: DateTime::seeded(0),
                updated_at: DateTime::seeded(0),
            },
        );
    }
    for (id, name) in [(31, "secure-login.example"), (32, "account-verify.example")] {
        db.phish_domains.insert(
            id,
            PhishDomain {
                id,
                name: name.to_string(),
                active: true,
                hidden: false,
                created_at: DateTime::seeded(0),
                updated_at: DateTime::seeded(0),
            },
        );
    }
}

fn active_groups(db: &Db) -> Vec<i32> {
    db.groups.values().filter(|g| g.status == GroupStatuses::Active).map(|g| g.id).collect()
}

fn seed_training(db: &mut Db, rng: &mut SmallRng, n: usize) {
    let groups = active_groups(db);
    let course_ids: Vec<String> = db.store_purchases.values().map(|s| s.course.polymorphic_id.clone()).collect();
    let statuses = [
        TrainingCampaignStatuses::InProgress,
        TrainingCampaignStatuses::Completed,
        TrainingCampaignStatuses::Closed,
        TrainingCampaignStatuses::Created,
    ];
    for i in 0..n {
        let id = db.next("training_campaign");
        let status = statuses[i % statuses.len()];
        let all_users = i == 0 || groups.is_empty();
        let selected_groups = if all_users { Vec::new() } else { vec![groups[i % groups.len()]] };
        let mut content = vec![course_ids[i % course_ids.len()].clone()];
        if i % 2 == 1 {
            content.push("Policy:651".to_string());
        }
        let starts = DateTime::seeded(86_400 * (20 + 10 * i as i64));
        let created = DateTime::seeded(86_400 * (15 + 10 * i as i64));
        let campaign = TrainingCampaign {
            id,
            name: format!(
                "{} {}",
                if i == 0 { "Annual Security Awareness" } else { "Quarterly Training" },
                2025 + i / 4
            ),
            active: matches!(status, TrainingCampaignStatuses::InProgress | TrainingCampaignStatuses::Created),
            status,
            auto_enroll: i == 0,
            starts_at: Some(starts),
            ends_at: Some(DateTime::seeded(86_400 * (80 + 10 * i as i64))),
            end_campaign_option: TrainingCampaignEnd::SpecifyDate,
            enrollment_duration: None,
            enrollment_duration_type: None,
            relative_duration: None,
            time_zone: Some(TimeZones::new("EASTERN_TIME_US_CANADA")),
            allow_past_due_completions: true,
            allow_surveys: false,
            allow_survey_comments: false,
            all_users,
            selected_content: content,
            selected_groups: selected_groups.clone(),
            notifications: vec![TrainingNotification {
                id: db.next("notification"),
                message_type: NotificationMessageTypes::new("WELCOME"),
                enabled: true,
                offset_num_days: None,
                delivery_method: Some("EMAIL".to_string()),
                training_campaign_id: id,
                training_campaign_name: String::new(),
                created_at: created.clone(),
                updated_at: created.clone(),
            }],
            created_at: created.clone(),
            updated_at: created,
        };
        let name = campaign.name.clone();
        db.training_campaigns.insert(id, campaign);
        if let Some(c) = db.training_campaigns.get_mut(&id) {
            for notification in &mut c.notifications {
                notification.training_campaign_name = name.clone();
            }
        }
        if status == TrainingCampaignStatuses::Created {
            continue;
        }
        let at = DateTime::seeded(86_400 * (21 + 10 * i as i64));
        for u in db.targeted_users(all_users, &selected_groups) {
            let before: BTreeSet<i32> = db.enrollments.keys().copied().collect();
            db.enroll(id, u, &at);
            let new: Vec<i32> = db.enrollments.keys().copied().filter(|k| !before.contains(k)).collect();
            for e in new {
                let status = match rng.random_range(0..4) {
                    0 => "Not Started",
                    1 => "In Progress",
                    2 => "Past Due",
                    _ => "Passed",
                };
                if let Some(old) = db.enrollments.get(&e).cloned() {
                    let redone = Enrollment::new(
                        e,
                        (old.campaign_id, old.user_id),
                        (&old.item, old.store_purchase_id),
                        status,
                        at.clone(),
                    );
                    db.enrollments.insert(e, redone);
                }
            }
        }
    }
}

fn seed_phishing(db: &mut Db, rng: &mut SmallRng, n: usize) {
    let groups = active_groups(db);
    let frequencies =
        [FrequencyPeriods::Month, FrequencyPeriods::Onetime, FrequencyPeriods::Quarter, FrequencyPeriods::Week];
    let topics: Vec<i32> = db.template_topics.keys().copied().collect();
    for i in 0..n {
        let id = db.next("phishing_campaign");
        let all_users = groups.is_empty();
        let selected_groups = if all_users { Vec::new() } else { vec![groups[(i + 1) % groups.len()]] };
        let created = DateTime::seeded(86_400 * (10 + 7 * i as i64));
        let name = format!("{} Phishing Test {}", ["Baseline", "Monthly", "Holiday", "Executive"][i % 4], i + 1);
        let campaign = PhishingCampaign {
            active: i != 2,
            frequency_period: frequencies[i % frequencies.len()],
            next_run: Some(DateTime::seeded(86_400 * (200 + 30 * i as i64))),
            time_zone: Some(TimeZones::new("EASTERN_TIME_US_CANADA")),
            all_users,
            selected_groups: selected_groups.clone(),
            selected_template_topics: topics.iter().copied().skip(i % topics.len().max(1)).take(2).collect(),
            spread_emails: i % 2 == 0,
            sending_duration: Some(3),
            sending_duration_units: Some(DurationUnits::new("BUSINESS_DAYS")),
            business_days: vec![1, 2, 3, 4, 5],
            business_hours_start_hour: Some("09:00".to_string()),
            business_hours_end_hour: Some("17:00".to_string()),
            track_replies: true,
            rating: vec![1, 2, 3],
            phish_domain_id: Some(31),
            ..PhishingCampaign::new(id, name, created)
        };
        db.phishing_campaigns.insert(id, campaign);
        let runs = 1 + rng.random_range(0..3usize);
        let group_names: Vec<String> =
            selected_groups.iter().filter_map(|g| db.groups.get(g).map(|g| g.name.clone())).collect();
        for r in 0..runs {
            let run_id = db.next("run");
            let last = r + 1 == runs;
            let started = DateTime::seeded(86_400 * (30 + 30 * r as i64 + 7 * i as i64));
            let status = if last && i % 2 == 0 {
                PhishingCampaignRunStatuses::Tracking
            } else {
                PhishingCampaignRunStatuses::Completed
            };
            db.runs.insert(
                run_id,
                PhishingCampaignRun {
                    id: run_id,
                    status,
                    started_at: Some(started.clone()),
                    completed_at: (status == PhishingCampaignRunStatuses::Completed)
                        .then(|| DateTime::seeded(86_400 * (33 + 30 * r as i64 + 7 * i as i64))),
                    created_at: started.clone(),
                    updated_at: started.clone(),
                    duration: Some(3),
                    sending_duration: Some(3),
                    email_template_id: Some(4_000 + n32(r)),
                    phish_domain: Some("secure-login.example".to_string()),
                    reply_domain_prefix: None,
                    group_names: group_names.clone(),
                    campaign_non_recipients_count: 0,
                    campaign_id: id,
                    group_ids: selected_groups.clone(),
                },
            );
            for u in db.targeted_users(all_users, &selected_groups) {
                let rid = db.next("recipient");
                let email = db.users.get(&u).map(|u| u.email.clone()).unwrap_or_default();
                let opened = rng.random_bool(0.6);
                let clicked = opened && rng.random_bool(0.3);
                db.recipients.insert(
                    rid,
                    PhishingCampaignRecipient {
                        id: rid,
                        email,
                        scheduled_at: Some(started.clone()),
                        delivered: true,
                        opened,
                        clicked,
                        clicked_count: i32::from(clicked),
                        reported: !clicked && rng.random_bool(0.25),
                        bounced: false,
                        bounce_reason: None,
                        replied: false,
                        data_entered: clicked && rng.random_bool(0.2),
                        attachment_open: false,
                        macro_enabled: false,
                        qr_code_scanned: false,
                        called: false,
                        callback_data_entered: false,
                        dropped: false,
                        processed: true,
                        ip_address: clicked.then(|| format!("198.51.100.{}", rid % 250)),
                        ip_location: clicked.then(|| "US".to_string()),
                        browser: clicked.then(|| "Chrome".to_string()),
                        browser_version: clicked.then(|| "126.0".to_string()),
                        os: clicked.then(|| "Windows".to_string()),
                        created_at: started.clone(),
                        updated_at: started.clone(),
                        run_id,
                        user_id: u,
                    },
                );
            }
        }
    }
}

/// Users whose data a process must compare exactly and escape: members of Sales (or of the first
/// group), added after the random data so that the rest of the seed stays the same.
fn seed_edge_cases(db: &mut Db) {
    const PEOPLE: &[(&str, &str, &str, &str)] = &[
        ("sam.lee+sales@example.com", "Sam", "Lee", "VP \"Field\" Sales \\ EMEA"),
        ("zoe.o'brien@example.com", "Zoë", "O'Brien", "Account Executive\nNordics"),
    ];
    let sales = db.groups.values().find(|g| g.name == "Sales").or_else(|| db.groups.values().next()).map(|g| g.id);
    for (i, (email, first, last, title)) in PEOPLE.iter().enumerate() {
        let id = db.next("user");
        let created = DateTime::seeded(86_400 * 60 + i as i64 * 3_600);
        let mut user = User {
            first_name: Some((*first).to_string()),
            last_name: Some((*last).to_string()),
            job_title: Some((*title).to_string()),
            department: Some("Sales".to_string()),
            organization: Some(TENANT_NAME.to_string()),
            confirmed_at: Some(created.clone()),
            email_aliases: vec![EmailAlias {
                id: id * 10,
                email: (*email).to_string(),
                primary: true,
                created_at: created.clone(),
                updated_at: created.clone(),
            }],
            ..User::new(id, (*email).to_string(), created)
        };
        user.memberships.extend(sales);
        db.users.insert(id, user);
        // Enrolled where the campaigns seeded before them target them, like every other user.
        let campaigns: Vec<(i32, bool, Vec<i32>)> = db
            .training_campaigns
            .values()
            .filter(|c| c.status != TrainingCampaignStatuses::Created)
            .map(|c| (c.id, c.all_users, c.selected_groups.clone()))
            .collect();
        for (campaign, all_users, groups) in campaigns {
            if db.targeted_users(all_users, &groups).contains(&id) {
                db.enroll(campaign, id, &DateTime::seeded(86_400 * 61));
            }
        }
    }
}

fn seed_accounts(db: &mut Db, rng: &mut SmallRng, n: usize) {
    let owner = db.users.values().find(|u| u.admin).cloned();
    for i in 0..n {
        let id = 100_001 + n32(i);
        let (company, domain) =
            if i == 0 { (TENANT_NAME, TENANT_DOMAIN) } else { COMPANIES[(i - 1) % COMPANIES.len()] };
        let company = if i > COMPANIES.len() { format!("{company} {i}") } else { company.to_string() };
        let active = if i == 0 { 0 } else { rng.random_range(5..400) };
        let archived_users = if i == 0 { 0 } else { rng.random_range(0..20) };
        let seats = if i == 0 { n32(db.users.len()) + 10 } else { active + rng.random_range(0..50) };
        let billing = match i % 5 {
            3 => AccountBillingTypes::Trial,
            4 => AccountBillingTypes::Free,
            _ => AccountBillingTypes::Paid,
        };
        let (owner_id, owner_email, owner_first, owner_last) = match (&owner, i) {
            (Some(o), 0) => (
                o.id,
                o.email.clone(),
                o.first_name.clone().unwrap_or_default(),
                o.last_name.clone().unwrap_or_default(),
            ),
            _ => (500_000 + id, format!("admin@{domain}"), "Account".to_string(), "Owner".to_string()),
        };
        db.accounts.insert(
            id,
            Account {
                id,
                company_name: company.clone(),
                display_name: company,
                domain: domain.to_string(),
                archived: i == 2,
                billing_type: billing,
                number_of_seats: seats,
                number_of_all_seats: seats,
                number_of_standard_seats: seats,
                user_count: 0,
                all_user_count: 0,
                pst_count: rng.random_range(0..40),
                purchased_course_count: rng.random_range(1..30),
                training_campaign_count: rng.random_range(0..10),
                created_at: DateTime::seeded(-86_400 * (100 + 50 * i as i64)),
                percentage_users_phished: score(rng, 100.0),
                percentage_users_trained: score(rng, 100.0),
                phish_prone_percentage: score(rng, 40.0),
                latest_risk_score: score(rng, 100.0),
                risk_score: score(rng, 100.0),
                subscription_end_date: Some(Date(DateTime::seeded(86_400 * (365 + 30 * i as i64)).date())),
                partner_id: 77,
                partner_domain: "partner.example".to_string(),
                partner_display_name: "Stepwise Partner".to_string(),
                partner_access_expiration: None,
                account_settings_flag_names: Vec::new(),
                has_free_pst: false,
                has_free_prt: false,
                has_free_spt: false,
                has_free_qrt: false,
                has_free_usb: false,
                has_api: true,
                has_apiv2: true,
                has_phishing: true,
                has_training: billing != AccountBillingTypes::Free,
                has_only_stale_content: false,
                city: Some("Clearwater".to_string()),
                state: Some("FL".to_string()),
                country: Some("US".to_string()),
                time_zone: Some(TimeZones::new("EASTERN_TIME_US_CANADA")),
                account_owner: AccountOwner {
                    id: owner_id,
                    email: owner_email,
                    first_name: owner_first,
                    last_name: owner_last,
                    confirmed_at: Some(DateTime::seeded(0)),
                },
                subscription_object: Subscription { id: 3, friendly_name: "Diamond".to_string() },
                purchased_skus: vec![PurchasedSku {
                    sku_code: "KMSAT-DIAMOND".to_string(),
                    status: "active".to_string(),
                }],
                language_settings: LanguageSettings { admin_locale: "en-us".to_string() },
                sim_active_users: active,
                sim_archived_users: archived_users,
            },
        );
        if i == 0 {
            db.tenant_account_id = id;
        }
    }
    if n == 0 {
        db.tenant_account_id = 0;
    }
}
