//! The object/action pairs of the connector and the Boomi object behind each object name.

use compiler::Operation;

/// A Boomi Platform API object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// A user's global role (`AccountUserRole`).
    AccountUserRole,
    Role,
    AccountGroup,
    /// A user's role within an account group (`AccountGroupUserRole`).
    AccountGroupUserRole,
}

impl Object {
    /// The object of a process file's `object:` key.
    pub fn parse(name: &str) -> Option<Object> {
        Some(match name {
            "account_user_role" => Object::AccountUserRole,
            "role" => Object::Role,
            "account_group" => Object::AccountGroup,
            "account_group_user_role" => Object::AccountGroupUserRole,
            _ => return None,
        })
    }

    /// Boomi's name, as in the URL path.
    pub fn api_name(self) -> &'static str {
        match self {
            Object::AccountUserRole => "AccountUserRole",
            Object::Role => "Role",
            Object::AccountGroup => "AccountGroup",
            Object::AccountGroupUserRole => "AccountGroupUserRole",
        }
    }

    /// Objects that exist only on primary accounts.
    pub fn needs_primary(self) -> bool {
        matches!(self, Object::AccountGroup | Object::AccountGroupUserRole)
    }
}

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Create,
    Delete,
    Get,
    List,
}

impl Action {
    pub fn parse(name: &str) -> Option<Action> {
        Some(match name {
            "create" => Action::Create,
            "delete" => Action::Delete,
            "get" => Action::Get,
            "list" => Action::List,
            _ => return None,
        })
    }
}

/// Every (object, action) pair, in the order of the documentation.
pub static OPERATIONS: &[Operation] = &[
    Operation { object: "account_user_role", action: "create" },
    Operation { object: "account_user_role", action: "delete" },
    Operation { object: "account_user_role", action: "list" },
    Operation { object: "role", action: "get" },
    Operation { object: "role", action: "list" },
    Operation { object: "account_group", action: "get" },
    Operation { object: "account_group", action: "list" },
    Operation { object: "account_group_user_role", action: "create" },
    Operation { object: "account_group_user_role", action: "delete" },
    Operation { object: "account_group_user_role", action: "list" },
];

/// The operation named by a step, if the connector has it.
pub fn find(object: &str, action: &str) -> Option<(Object, Action)> {
    OPERATIONS.iter().find(|o| o.object == object && o.action == action)?;
    Some((Object::parse(object)?, Action::parse(action)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_parses_and_the_reference_is_covered() {
        for o in OPERATIONS {
            assert!(find(o.object, o.action).is_some(), "{o:?}");
        }
        let table: &[(&str, &[&str])] = &[
            ("account_user_role", &["create", "delete", "list"]),
            ("role", &["get", "list"]),
            ("account_group", &["get", "list"]),
            ("account_group_user_role", &["create", "delete", "list"]),
        ];
        let n: usize = table.iter().map(|(_, a)| a.len()).sum();
        assert_eq!(n, OPERATIONS.len());
        for (object, actions) in table {
            for action in *actions {
                assert!(find(object, action).is_some(), "{object}.{action}");
            }
        }
        assert!(find("role", "delete").is_none());
        assert!(find("user", "delete").is_none(), "no action deletes a user");
    }
}
