//! Deterministic seed data: the four default roles, three custom roles, one non-assignable role
//! with a non-UUID id, `seed_users` users who have logged in (`first.last{N}@example.com`,
//! one to three global roles each, every third one exactly one role that is not Standard User),
//! and on a primary account three account groups with group grants. The same seed gives the
//! same data.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sim_net::seed::{Person, person};

use crate::config::SimConfig;
use crate::model::*;

/// A random RFC 4122 version-4 UUID drawn from the seeded generator.
fn uuid(rng: &mut SmallRng) -> String {
    let hi: u64 = rng.random();
    let lo: u64 = rng.random();
    let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

fn default_role(id: &str, name: &str, description: &str, privileges: Vec<&'static str>) -> Role {
    Role {
        id: id.to_string(),
        account_id: "1".to_string(),
        name: name.to_string(),
        description: description.to_string(),
        parent_id: Some(STANDARD_USER_ROLE_ID.to_string()),
        privileges,
        assignable: true,
    }
}

fn seed_roles(db: &mut Db, rng: &mut SmallRng) {
    let account = db.account_id.clone();
    db.roles.push(default_role(
        ADMINISTRATOR_ROLE_ID,
        "Administrator",
        "Boomi Default Administrator role.",
        vec!["API", "ACCOUNT_ADMIN", "BUILD", "DEPLOY", "EXECUTE", "DASHBOARD", "ATOM_MANAGEMENT"],
    ));
    db.roles.push(default_role(
        PRODUCTION_SUPPORT_ROLE_ID,
        "Production Support",
        "Boomi Default Production Support User role.",
        vec!["DASHBOARD", "EXECUTE", "PROCESS_REPORTING", "ATOM_MANAGEMENT_READ_ONLY"],
    ));
    db.roles.push(default_role(
        STANDARD_USER_ROLE_ID,
        "Standard User",
        "Boomi Default Standard User role.",
        vec!["BUILD", "DASHBOARD", "PROCESS_REPORTING"],
    ));
    db.roles.push(default_role(
        SUPPORT_ROLE_ID,
        "Support",
        "Boomi Default Basic Support User role.",
        vec!["DASHBOARD", "PROCESS_REPORTING"],
    ));
    let custom: [(&str, &str, &str, Vec<&'static str>); 3] = [
        ("Process Developer", STANDARD_USER_ROLE_ID, "Builds and tests processes.", vec!["API", "BUILD", "EXECUTE"]),
        (
            "Deployment Manager",
            PRODUCTION_SUPPORT_ROLE_ID,
            "Deploys to production.",
            vec!["DEPLOY", "PACKAGE_MANAGEMENT"],
        ),
        ("Read Only Auditor", STANDARD_USER_ROLE_ID, "", vec!["DASHBOARD"]),
    ];
    for (name, parent, description, privileges) in custom {
        db.roles.push(Role {
            id: uuid(rng),
            account_id: account.clone(),
            name: name.to_string(),
            description: description.to_string(),
            parent_id: Some(parent.to_string()),
            privileges,
            assignable: true,
        });
    }
    db.roles.push(Role {
        id: NON_UUID_ROLE_ID.to_string(),
        account_id: account,
        name: "Partner Integration Admin (legacy)".to_string(),
        description: "A legacy role; it cannot be assigned through the API.".to_string(),
        parent_id: None,
        privileges: vec!["API", "ACCOUNT_ADMIN"],
        assignable: false,
    });
}

fn grant(db: &mut Db, key: &str, user_id: &str, role_id: &str) {
    if db.user_roles.iter().any(|g| g.user_key == key && g.role_id == role_id) {
        return;
    }
    let id = user_role_id(role_id, user_id, &db.account_id);
    db.user_roles.push(UserRole { id, user_key: key.to_string(), role_id: role_id.to_string() });
}

fn seed_users(db: &mut Db, rng: &mut SmallRng, count: usize) {
    let non_standard: Vec<String> =
        db.roles.iter().filter(|r| r.assignable && r.id != STANDARD_USER_ROLE_ID).map(|r| r.id.clone()).collect();
    let extra: Vec<String> = db.roles.iter().filter(|r| r.id != STANDARD_USER_ROLE_ID).map(|r| r.id.clone()).collect();
    for i in 0..count {
        let Person { first, last, email: user_id } = person(rng, i + 1);
        let key = user_id.to_lowercase();
        db.users.insert(
            key.clone(),
            User {
                user_id: user_id.clone(),
                first_name: first.to_string(),
                last_name: last.to_string(),
                logged_in: true,
                invited: false,
            },
        );
        if i % 3 == 0 {
            let role = non_standard[rng.random_range(0..non_standard.len())].clone();
            grant(db, &key, &user_id, &role);
            continue;
        }
        grant(db, &key, &user_id, STANDARD_USER_ROLE_ID);
        if i == 1 {
            // At least one user holds the role that cannot be assigned through the API.
            grant(db, &key, &user_id, NON_UUID_ROLE_ID);
        }
        // At least one user holds three roles.
        let more = if i == 2 { 2 } else { rng.random_range(0..3usize) };
        let mut tries = 0;
        while db.user_roles.iter().filter(|g| g.user_key == key).count() < 1 + more && tries < 20 {
            let role = extra[rng.random_range(0..extra.len())].clone();
            grant(db, &key, &user_id, &role);
            tries += 1;
        }
    }
}

fn seed_groups(db: &mut Db, rng: &mut SmallRng) {
    let account = db.account_id.clone();
    let groups: [(&str, bool, &'static str, usize); 3] = [
        ("All Accounts", true, "none", 3),
        ("EMEA Subsidiaries", false, "warning", 2),
        ("Partner Sandboxes", false, "error", 1),
    ];
    for (name, default_group, alert_level, resources) in groups {
        let slug: String = name.to_lowercase().split_whitespace().collect::<Vec<_>>().join("-");
        db.groups.push(Group {
            id: uuid(rng),
            name: name.to_string(),
            default_group,
            alert_level,
            resources: (1..=resources)
                .map(|n| (format!("{account}-{slug}-{n}"), format!("{name} account {n}")))
                .collect(),
        });
    }
    let users: Vec<(String, String)> = db.users.iter().map(|(k, u)| (k.clone(), u.user_id.clone())).collect();
    if users.is_empty() {
        return;
    }
    let roles: Vec<String> = db.roles.iter().filter(|r| r.assignable).map(|r| r.id.clone()).collect();
    let group_ids: Vec<String> = db.groups.iter().map(|g| g.id.clone()).collect();
    for (n, group_id) in group_ids.iter().enumerate() {
        let members = rng.random_range(2..=4usize).min(users.len());
        for m in 0..members {
            let (key, user_id) = &users[rng.random_range(0..users.len())];
            // The first member of the first group holds two roles there (one grant each).
            let held = if n == 0 && m == 0 { 2 } else { 1 };
            let first = rng.random_range(0..roles.len());
            for h in 0..held {
                let role = &roles[(first + h) % roles.len()];
                if db.group_roles.iter().any(|g| &g.user_key == key && &g.role_id == role && &g.group_id == group_id) {
                    continue;
                }
                db.group_roles.push(GroupRole {
                    id: group_role_id(role, user_id, group_id),
                    group_id: group_id.clone(),
                    user_key: key.clone(),
                    role_id: role.clone(),
                });
            }
        }
    }
}

/// Builds the whole data set for a configuration.
pub(crate) fn build(config: &SimConfig) -> Db {
    let mut rng = SmallRng::seed_from_u64(config.seed);
    let mut db = Db::new(&config.account_id, config.primary);
    seed_roles(&mut db, &mut rng);
    seed_users(&mut db, &mut rng, config.seed_users);
    if config.primary {
        seed_groups(&mut db, &mut rng);
    }
    if config.seed_edge_cases {
        seed_edge_cases(&mut db);
    }
    db
}

/// Users whose data a process must compare exactly and escape, each with Standard User; added
/// after the random data so that the rest of the seed stays the same.
fn seed_edge_cases(db: &mut Db) {
    const PEOPLE: &[(&str, &str, &str)] = &[
        ("sam.lee+sales@example.com", "Sam", "Lee"),
        ("pat.o'hara+boomi@example.com", "Pat \"PJ\"", "O'Hara \\ Zoë\nJr."),
    ];
    for (user_id, first, last) in PEOPLE {
        let key = user_id.to_lowercase();
        db.users.insert(
            key.clone(),
            User {
                user_id: (*user_id).to_string(),
                first_name: (*first).to_string(),
                last_name: (*last).to_string(),
                logged_in: true,
                invited: false,
            },
        );
        grant(db, &key, user_id, STANDARD_USER_ROLE_ID);
    }
}
