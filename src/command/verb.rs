//! [`Verb`]: every command of commands-and-sys.md §2, its name and the management scope it checks.
//!
//! The table is the one place that says which verbs exist: lookup ([`Verb::lookup`]), the reply's
//! `command` name and the scope check all read it. Must not run anything.

use crate::lot::Kind;
use crate::lot::ast::Scope;

/// One command verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    AddUser,
    RemoveUser,
    ChangeUserPassword,
    ChangeUserSettings,
    AddUserToGroup,
    RemoveUserFromGroup,
    ListUsers,
    /// `-addRule`, `-addModel`, `-addAction`, `-addRoute`.
    Add(Kind),
    /// `-removeRule <name>` ...
    Remove(Kind),
    /// `-removeAllModels`, `-removeAllActions`, `-removeAllRoutes` (no `-removeAllRules`: the
    /// spec has none, and it would lock every user but root out).
    RemoveAll(Kind),
    RestoreRules,
    ListRoutes,
    RunAction,
    Lot,
    List,
    SetEnv,
    RemoveEnv,
    ListEnv,
    SetSecret,
    RemoveSecret,
    ListSecrets,
    Backup,
    Restore,
    Status,
}

impl Verb {
    /// Every verb, for lookup and the docs test.
    pub const ALL: [Verb; 32] = [
        Verb::AddUser,
        Verb::RemoveUser,
        Verb::ChangeUserPassword,
        Verb::ChangeUserSettings,
        Verb::AddUserToGroup,
        Verb::RemoveUserFromGroup,
        Verb::ListUsers,
        Verb::Add(Kind::Rule),
        Verb::Add(Kind::Model),
        Verb::Add(Kind::Action),
        Verb::Add(Kind::Route),
        Verb::Remove(Kind::Rule),
        Verb::Remove(Kind::Model),
        Verb::Remove(Kind::Action),
        Verb::Remove(Kind::Route),
        Verb::RemoveAll(Kind::Model),
        Verb::RemoveAll(Kind::Action),
        Verb::RemoveAll(Kind::Route),
        Verb::RestoreRules,
        Verb::ListRoutes,
        Verb::RunAction,
        Verb::Lot,
        Verb::List,
        Verb::SetEnv,
        Verb::RemoveEnv,
        Verb::ListEnv,
        Verb::SetSecret,
        Verb::RemoveSecret,
        Verb::ListSecrets,
        Verb::Backup,
        Verb::Restore,
        Verb::Status,
    ];

    /// The verb as written after the dash (`addRule`).
    pub fn name(self) -> &'static str {
        match self {
            Verb::AddUser => "addUser",
            Verb::RemoveUser => "removeUser",
            Verb::ChangeUserPassword => "changeUserPassword",
            Verb::ChangeUserSettings => "changeUserSettings",
            Verb::AddUserToGroup => "addUserToGroup",
            Verb::RemoveUserFromGroup => "removeUserFromGroup",
            Verb::ListUsers => "listUsers",
            Verb::Add(Kind::Rule) => "addRule",
            Verb::Add(Kind::Model) => "addModel",
            Verb::Add(Kind::Action) => "addAction",
            Verb::Add(Kind::Route) => "addRoute",
            Verb::Remove(Kind::Rule) => "removeRule",
            Verb::Remove(Kind::Model) => "removeModel",
            Verb::Remove(Kind::Action) => "removeAction",
            Verb::Remove(Kind::Route) => "removeRoute",
            Verb::RemoveAll(Kind::Rule) => "removeAllRules",
            Verb::RemoveAll(Kind::Model) => "removeAllModels",
            Verb::RemoveAll(Kind::Action) => "removeAllActions",
            Verb::RemoveAll(Kind::Route) => "removeAllRoutes",
            Verb::RestoreRules => "restoreRules",
            Verb::ListRoutes => "listRoutes",
            Verb::RunAction => "runAction",
            Verb::Lot => "lot",
            Verb::List => "list",
            Verb::SetEnv => "setEnv",
            Verb::RemoveEnv => "removeEnv",
            Verb::ListEnv => "listEnv",
            Verb::SetSecret => "setSecret",
            Verb::RemoveSecret => "removeSecret",
            Verb::ListSecrets => "listSecrets",
            Verb::Backup => "backup",
            Verb::Restore => "restore",
            Verb::Status => "status",
        }
    }

    /// The verb named `name` (without the dash; ASCII case does not matter, so `-addrule` works
    /// as `-addRule`).
    pub fn lookup(name: &str) -> Option<Verb> {
        Verb::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(name))
    }

    /// The management scope this verb checks before it runs. `None`: `-status` (CommandCall,
    /// already checked by the broker's publish authorization, is enough) and `-lot` (checks
    /// each kind's Creation scope once it knows the kinds, see [`creation_scope`]).
    pub fn scope(self) -> Option<Scope> {
        Some(match self {
            Verb::AddUser => Scope::UserManagementCreation,
            Verb::RemoveUser => Scope::UserManagementRemove,
            Verb::ChangeUserPassword => Scope::UserManagementPasswordChange,
            Verb::ChangeUserSettings
            | Verb::AddUserToGroup
            | Verb::RemoveUserFromGroup
            | Verb::ListUsers => Scope::UserManagementUpdate,
            Verb::Add(kind) => creation_scope(kind),
            Verb::Remove(kind) | Verb::RemoveAll(kind) => removal_scope(kind),
            Verb::RestoreRules => Scope::RuleManagementCreation,
            Verb::ListRoutes => Scope::RouteManagementCreation,
            Verb::RunAction => Scope::ActionManagementRun,
            Verb::List
            | Verb::SetEnv
            | Verb::RemoveEnv
            | Verb::ListEnv
            | Verb::SetSecret
            | Verb::RemoveSecret
            | Verb::ListSecrets
            | Verb::Backup
            | Verb::Restore => Scope::SystemConfiguration,
            Verb::Lot | Verb::Status => return None,
        })
    }
}

/// The scope that allows deploying definitions of `kind`.
pub fn creation_scope(kind: Kind) -> Scope {
    match kind {
        Kind::Rule => Scope::RuleManagementCreation,
        Kind::Model => Scope::ModelManagementCreation,
        Kind::Action => Scope::ActionManagementCreation,
        Kind::Route => Scope::RouteManagementCreation,
    }
}

/// The scope that allows removing definitions of `kind`.
pub fn removal_scope(kind: Kind) -> Scope {
    match kind {
        Kind::Rule => Scope::RuleManagementRemove,
        Kind::Model => Scope::ModelManagementRemove,
        Kind::Action => Scope::ActionManagementRemove,
        Kind::Route => Scope::RouteManagementRemove,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_round_trips_and_ignores_case() {
        for v in Verb::ALL {
            assert_eq!(Verb::lookup(v.name()), Some(v), "{}", v.name());
        }
        assert_eq!(Verb::lookup("ADDRULE"), Some(Verb::Add(Kind::Rule)));
        assert_eq!(Verb::lookup("removeAllRules"), None);
        assert_eq!(Verb::lookup("x"), None);
    }

    #[test]
    fn scopes_follow_the_table() {
        assert_eq!(Verb::AddUser.scope(), Some(Scope::UserManagementCreation));
        assert_eq!(
            Verb::Remove(Kind::Model).scope(),
            Some(Scope::ModelManagementRemove)
        );
        assert_eq!(
            Verb::Add(Kind::Route).scope(),
            Some(Scope::RouteManagementCreation)
        );
        assert_eq!(Verb::Backup.scope(), Some(Scope::SystemConfiguration));
        assert_eq!(Verb::Status.scope(), None);
        assert_eq!(Verb::Lot.scope(), None);
    }
}
