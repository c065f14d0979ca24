//! `CREATE ROLE`, `ALTER ROLE`, `DROP ROLE`, `GRANT`/`REVOKE` of privileges on tables,
//! views, sources and schema `public`, and `GRANT`/`REVOKE` of role membership, with
//! Postgres' rules for who may do what and its errors.
//!
//! * Creating, altering and dropping roles needs `SUPERUSER` or `CREATEROLE`; only a
//!   superuser makes, changes or drops superusers. A role may change its own password.
//! * A password is stored as a SCRAM-SHA-256 verifier computed here (4096 iterations, as
//!   Postgres); a string that already is a verifier is stored as given, as Postgres does.
//! * Privileges on an object are granted and revoked by its owner or a superuser;
//!   `CREATE ON SCHEMA public` by a superuser (the schema's owner is the bootstrap role).
//! * Membership in the predefined `pg_read_server_files` / `pg_write_server_files` is
//!   granted by superusers only, since it opens the server's files (stricter than
//!   Postgres 15, where `CREATEROLE` sufficed).

use weir_planner::sqlparser::ast::{
    Action, AlterRoleOperation, CreateRole, Expr, GrantObjects, Grantee, GranteeName, GranteesType, Ident,
    ObjectName, Password, Privileges, RoleOption, Value,
};
use weir_planner::{normalize_ident, split_name, sqlstate, SqlError, SqlResult};

use super::access::{all_objects, current_role, object_named, Object, ObjectKind};
use super::{Context, Outcome};
use crate::engine::DEFAULT_SCHEMA;
use crate::privileges::{
    undefined_role, PrivilegeCatalog, PrivilegeSet, Role, PREDEFINED_ROLES, READ_SERVER_FILES,
    WRITE_SERVER_FILES,
};
use crate::wire::auth::ScramVerifier;

/// Postgres' default SCRAM iteration count (`scram_iterations`).
const SCRAM_ITERATIONS: usize = 4096;

fn denied(message: impl Into<String>) -> SqlError {
    SqlError::new(sqlstate::INSUFFICIENT_PRIVILEGE, message)
}

/// The attributes a role statement sets; `None`: not mentioned.
#[derive(Default)]
struct Attributes {
    superuser: Option<bool>,
    login: Option<bool>,
    create_role: Option<bool>,
    /// `Some(None)`: `PASSWORD NULL`.
    password: Option<Option<String>>,
}

impl Attributes {
    fn apply(self, role: &mut Role) {
        if let Some(v) = self.superuser {
            role.superuser = v;
        }
        if let Some(v) = self.login {
            role.login = v;
        }
        if let Some(v) = self.create_role {
            role.create_role = v;
        }
        if let Some(password) = self.password {
            role.password = password;
        }
    }

    /// Whether anything but the password changes.
    fn changes_more_than_password(&self) -> bool {
        self.superuser.is_some() || self.login.is_some() || self.create_role.is_some()
    }
}

/// A role name given by a statement, refused if Postgres reserves it.
fn new_role_name(name: &str) -> SqlResult<String> {
    if name.starts_with("pg_") {
        return Err(SqlError::new("42939", format!("role name \"{name}\" is reserved"))
            .with_detail("Role names starting with \"pg_\" are reserved."));
    }
    if ["public", "none", "current_user", "session_user", "current_role"].contains(&name) {
        return Err(SqlError::new("42939", format!("role name \"{name}\" is reserved")));
    }
    Ok(name.to_string())
}

fn role_name_of(name: &ObjectName) -> SqlResult<String> {
    let (_, role) = split_name(name)?;
    Ok(role)
}

/// The verifier to store for `PASSWORD '...'`: an empty password is none (Postgres clears
/// it), a SCRAM verifier is kept as given, anything else is hashed here.
fn password_verifier(password: &Password) -> SqlResult<Option<String>> {
    let Password::Password(expr) = password else { return Ok(None) };
    let not_literal = || SqlError::syntax(format!("PASSWORD takes a string literal, not {expr}"));
    let text = match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => s.clone(),
            Value::DollarQuotedString(d) => d.value.clone(),
            Value::Null => return Ok(None),
            _ => return Err(not_literal()),
        },
        _ => return Err(not_literal()),
    };
    if text.is_empty() {
        return Ok(None);
    }
    if text.starts_with("SCRAM-SHA-256$") && ScramVerifier::parse(&text).is_ok() {
        return Ok(Some(text));
    }
    ScramVerifier::generate(&text, SCRAM_ITERATIONS).map(Some).map_err(SqlError::internal)
}

fn unsupported_option(what: &str) -> SqlError {
    SqlError::unsupported(format!("the role attribute {what}"))
        .with_hint("Weir's roles have SUPERUSER, LOGIN, CREATEROLE and PASSWORD.")
}

/// Refuses attributes Weir does not have (`CREATEDB`, `REPLICATION`, `BYPASSRLS` are the
/// bootstrap role's alone; connection limits and expiry are not enforced).
fn check_unsupported(flags: &[(&str, Option<bool>)], exprs: &[(&str, bool)]) -> SqlResult<()> {
    for (name, value) in flags {
        if *value == Some(true) {
            return Err(unsupported_option(name));
        }
    }
    for (name, present) in exprs {
        if *present {
            return Err(unsupported_option(name));
        }
    }
    Ok(())
}

/// May the session's role create, alter or drop roles (`superuser` ones if asked)?
fn require_role_admin(catalog: &PrivilegeCatalog, me: &str, action: &str) -> SqlResult<()> {
    let can = catalog.is_superuser(me) || catalog.role(me).is_some_and(|r| r.create_role);
    match can {
        true => Ok(()),
        false => Err(denied(format!("permission denied to {action} role"))),
    }
}

pub fn create_role(cx: &Context<'_>, create: &CreateRole) -> SqlResult<Outcome> {
    check_unsupported(
        &[
            ("CREATEDB", create.create_db),
            ("REPLICATION", create.replication),
            ("BYPASSRLS", create.bypassrls),
        ],
        &[
            ("CONNECTION LIMIT", create.connection_limit.is_some()),
            ("VALID UNTIL", create.valid_until.is_some()),
            ("NOINHERIT", create.inherit == Some(false)),
            ("ADMIN", !create.admin.is_empty()),
            ("IN GROUP", !create.in_group.is_empty()),
            ("USER", !create.user.is_empty()),
        ],
    )?;
    let names: Vec<String> = create
        .names
        .iter()
        .map(role_name_of)
        .collect::<SqlResult<Vec<_>>>()?
        .iter()
        .map(|n| new_role_name(n))
        .collect::<SqlResult<_>>()?;
    let attributes = Attributes {
        superuser: create.superuser,
        login: create.login,
        create_role: create.create_role,
        password: create.password.as_ref().map(password_verifier).transpose()?,
    };
    let in_roles: Vec<String> = create.in_role.iter().map(normalize_ident).collect();
    let members: Vec<String> = create.role.iter().map(normalize_ident).collect();
    let me = current_role(cx)?;
    cx.engine.roles.update(|catalog| {
        require_role_admin(catalog, &me, "create")?;
        if attributes.superuser == Some(true) && !catalog.is_superuser(&me) {
            return Err(denied("must be superuser to create superusers"));
        }
        for name in &names {
            if create.if_not_exists && catalog.role_exists(name) {
                continue;
            }
            let mut role = Role {
                oid: 0,
                name: name.clone(),
                superuser: false,
                login: false,
                create_role: false,
                password: None,
            };
            clone_attributes(&attributes).apply(&mut role);
            catalog.create_role(role)?;
            for group in &in_roles {
                grant_membership_checked(catalog, &me, group, name)?;
            }
            for member in &members {
                grant_membership_checked(catalog, &me, name, member)?;
            }
        }
        Ok(())
    })?;
    tracing::info!(roles = ?names, by = me, "role created");
    Ok(Outcome::Command { tag: "CREATE ROLE", rows: None })
}

fn clone_attributes(a: &Attributes) -> Attributes {
    Attributes {
        superuser: a.superuser,
        login: a.login,
        create_role: a.create_role,
        password: a.password.clone(),
    }
}

pub fn alter_role(cx: &Context<'_>, name: &Ident, operation: &AlterRoleOperation) -> SqlResult<Outcome> {
    let name = normalize_ident(name);
    let options = match operation {
        AlterRoleOperation::WithOptions { options } => options,
        AlterRoleOperation::RenameRole { .. } => {
            return Err(SqlError::unsupported("ALTER ROLE ... RENAME TO"))
        }
        AlterRoleOperation::AddMember { .. } | AlterRoleOperation::DropMember { .. } => {
            return Err(SqlError::unsupported("ALTER GROUP").with_hint("Use GRANT role TO member."))
        }
        AlterRoleOperation::Set { .. } | AlterRoleOperation::Reset { .. } => {
            return Err(SqlError::unsupported("ALTER ROLE ... SET (per-role settings)"))
        }
    };
    let mut attributes = Attributes::default();
    for option in options {
        match option {
            RoleOption::SuperUser(v) => attributes.superuser = Some(*v),
            RoleOption::Login(v) => attributes.login = Some(*v),
            RoleOption::CreateRole(v) => attributes.create_role = Some(*v),
            RoleOption::Password(p) => attributes.password = Some(password_verifier(p)?),
            RoleOption::Inherit(true) => {}
            RoleOption::CreateDB(false) | RoleOption::Replication(false) | RoleOption::BypassRLS(false) => {}
            other => return Err(unsupported_option(&other.to_string())),
        }
    }
    let me = current_role(cx)?;
    cx.engine.roles.update(|catalog| {
        if !catalog.role_exists(&name) {
            return Err(undefined_role(&name));
        }
        let target_is_superuser = catalog.is_superuser(&name);
        let own_password = name == me && !attributes.changes_more_than_password();
        if (target_is_superuser || attributes.superuser.is_some())
            && !catalog.is_superuser(&me)
            && !own_password
        {
            return Err(denied("must be superuser to alter superuser roles or change superuser attribute"));
        }
        if !own_password {
            require_role_admin(catalog, &me, "alter")?;
        }
        attributes.apply(catalog.role_mut(&name)?);
        Ok(())
    })?;
    tracing::info!(role = name, by = me, "role altered");
    Ok(Outcome::Command { tag: "ALTER ROLE", rows: None })
}

pub fn drop_role(cx: &Context<'_>, names: &[ObjectName], if_exists: bool) -> SqlResult<Outcome> {
    let names: Vec<String> = names.iter().map(role_name_of).collect::<SqlResult<_>>()?;
    let me = current_role(cx)?;
    let objects = all_objects(&cx.engine.store);
    let describe =
        |id: u64| objects.iter().find(|o| o.id == id).map(|o| format!("{} {}", o.kind.noun(), o.name));
    cx.engine.roles.update(|catalog| {
        require_role_admin(catalog, &me, "drop")?;
        for name in &names {
            if !catalog.role_exists(name) {
                if if_exists {
                    continue;
                }
                return Err(undefined_role(name));
            }
            if name == &me {
                return Err(SqlError::new("55006", "current user cannot be dropped"));
            }
            if name == catalog.bootstrap() || PREDEFINED_ROLES.iter().any(|(_, n)| n == name) {
                return Err(SqlError::new(
                    sqlstate::DEPENDENT_OBJECTS_STILL_EXIST,
                    format!("cannot drop role {name} because it is required by the database system"),
                ));
            }
            if catalog.is_superuser(name) && !catalog.is_superuser(&me) {
                return Err(denied("must be superuser to drop superusers"));
            }
            let dependents = catalog.dependents(name, &describe);
            if !dependents.is_empty() {
                return Err(SqlError::new(
                    sqlstate::DEPENDENT_OBJECTS_STILL_EXIST,
                    format!("role \"{name}\" cannot be dropped because some objects depend on it"),
                )
                .with_detail(dependents.join("\n"))
                .with_hint(
                    "Drop its objects (or have a superuser drop them) and REVOKE its privileges first.",
                ));
            }
            catalog.drop_role(name)?;
        }
        Ok(())
    })?;
    tracing::info!(roles = ?names, by = me, "role dropped");
    Ok(Outcome::Command { tag: "DROP ROLE", rows: None })
}

/// `GRANT role TO member` / `REVOKE role FROM member`.
pub fn role_membership(
    cx: &Context<'_>,
    grant: bool,
    roles: &[Ident],
    members: &[Ident],
) -> SqlResult<Outcome> {
    let me = current_role(cx)?;
    cx.engine.roles.update(|catalog| {
        for role in roles.iter().map(normalize_ident) {
            for member in members.iter().map(normalize_ident) {
                if grant {
                    grant_membership_checked(catalog, &me, &role, &member)?;
                } else {
                    require_membership_admin(catalog, &me, &role)?;
                    catalog.revoke_membership(&role, &member)?;
                }
            }
        }
        Ok(())
    })?;
    Ok(Outcome::Command { tag: if grant { "GRANT ROLE" } else { "REVOKE ROLE" }, rows: None })
}

fn require_membership_admin(catalog: &PrivilegeCatalog, me: &str, role: &str) -> SqlResult<()> {
    if !catalog.role_exists(role) {
        return Err(undefined_role(role));
    }
    if catalog.is_superuser(me) {
        return Ok(());
    }
    let file_role = role == READ_SERVER_FILES || role == WRITE_SERVER_FILES;
    if catalog.is_superuser(role) || file_role {
        return Err(denied(format!("must be superuser to alter members of role \"{role}\"")));
    }
    require_role_admin(catalog, me, "grant")
        .map_err(|_| denied(format!("permission denied to grant role \"{role}\"")))
}

fn grant_membership_checked(
    catalog: &mut PrivilegeCatalog,
    me: &str,
    role: &str,
    member: &str,
) -> SqlResult<()> {
    require_membership_admin(catalog, me, role)?;
    catalog.grant_membership(role, member)?;
    Ok(())
}

/// What a GRANT or REVOKE of privileges applies to.
enum Target {
    Objects(Vec<Object>),
    PublicSchema,
}

fn grant_target(cx: &Context<'_>, objects: Option<&GrantObjects>) -> SqlResult<Target> {
    let store = &cx.engine.store;
    let named = |names: &[ObjectName]| -> SqlResult<Target> {
        let mut out = Vec::new();
        for name in names {
            let (schema, relation) = split_name(name)?;
            let object = object_named(store, &schema, &relation).ok_or_else(|| {
                SqlError::new(sqlstate::UNDEFINED_TABLE, format!("relation \"{relation}\" does not exist"))
            })?;
            if object.kind == ObjectKind::Sink {
                return Err(SqlError::new(
                    sqlstate::WRONG_OBJECT_TYPE,
                    format!("\"{relation}\" is a sink: nothing reads or writes it through SQL"),
                ));
            }
            out.push(object);
        }
        Ok(Target::Objects(out))
    };
    match objects {
        Some(GrantObjects::Tables(names) | GrantObjects::Views(names)) => named(names),
        Some(GrantObjects::AllTablesInSchema { schemas }) => {
            for schema in schemas {
                let (_, schema) = split_name(schema)?;
                if schema != DEFAULT_SCHEMA {
                    return Err(no_schema(&schema));
                }
            }
            Ok(Target::Objects(
                all_objects(store).into_iter().filter(|o| o.kind != ObjectKind::Sink).collect(),
            ))
        }
        Some(GrantObjects::Schemas(schemas)) => {
            for schema in schemas {
                let (_, schema) = split_name(schema)?;
                if schema != DEFAULT_SCHEMA {
                    return Err(no_schema(&schema));
                }
            }
            Ok(Target::PublicSchema)
        }
        Some(other) => Err(SqlError::unsupported(format!("GRANT ON {other}"))
            .with_hint("Weir grants on tables, materialized views, sources and schema public.")),
        None => Err(SqlError::syntax("GRANT and REVOKE of privileges need ON object")),
    }
}

fn no_schema(schema: &str) -> SqlError {
    SqlError::new(sqlstate::INVALID_SCHEMA_NAME, format!("schema \"{schema}\" does not exist"))
}

/// The table privileges named, and whether `CREATE` / `USAGE` (schema privileges) are.
/// `ALL` is every privilege of the object it applies to.
fn table_privileges(privileges: &Privileges) -> SqlResult<(PrivilegeSet, bool, bool)> {
    let actions = match privileges {
        Privileges::All { .. } => return Ok((PrivilegeSet::ALL, false, false)),
        Privileges::Actions(actions) => actions,
    };
    let (mut set, mut create, mut usage) = (PrivilegeSet::NONE, false, false);
    for action in actions {
        let keyword = match action {
            Action::Select { columns: None } => "SELECT",
            Action::Insert { columns: None } => "INSERT",
            Action::Update { columns: None } => "UPDATE",
            Action::Delete => "DELETE",
            Action::Truncate => "TRUNCATE",
            Action::References { columns: None } => "REFERENCES",
            Action::Trigger => "TRIGGER",
            Action::Create { obj_type: None } => {
                create = true;
                continue;
            }
            Action::Usage => {
                usage = true;
                continue;
            }
            Action::Select { .. }
            | Action::Insert { .. }
            | Action::Update { .. }
            | Action::References { .. } => return Err(SqlError::unsupported("column privileges")),
            other => return Err(SqlError::unsupported(format!("the privilege {other}"))),
        };
        set = set.union(PrivilegeSet::from_keyword(keyword).unwrap_or(PrivilegeSet::NONE));
    }
    Ok((set, create, usage))
}

/// Grantee role names, `""` for PUBLIC.
fn grantee_names(grantees: &[Grantee], catalog: &PrivilegeCatalog) -> SqlResult<Vec<String>> {
    grantees
        .iter()
        .map(|g| match (&g.grantee_type, &g.name) {
            (GranteesType::Public, _) => Ok(String::new()),
            (
                GranteesType::Role | GranteesType::User | GranteesType::Group | GranteesType::None,
                Some(GranteeName::ObjectName(name)),
            ) => {
                let name = role_name_of(name)?;
                if name.eq_ignore_ascii_case("public") {
                    return Ok(String::new());
                }
                match catalog.role_exists(&name) {
                    true => Ok(name),
                    false => Err(undefined_role(&name)),
                }
            }
            _ => Err(SqlError::unsupported(format!("the grantee {g}"))),
        })
        .collect()
}

/// `GRANT`/`REVOKE` privileges `ON` tables, views, sources, `ALL TABLES IN SCHEMA public`
/// or `SCHEMA public`.
pub fn change_privileges(
    cx: &Context<'_>,
    grant: bool,
    privileges: &Privileges,
    objects: Option<&GrantObjects>,
    grantees: &[Grantee],
    with_grant_option: bool,
) -> SqlResult<Outcome> {
    if with_grant_option {
        return Err(SqlError::unsupported("WITH GRANT OPTION")
            .with_hint("Only owners and superusers grant privileges in Weir."));
    }
    let target = grant_target(cx, objects)?;
    let (set, create, usage) = table_privileges(privileges)?;
    let me = current_role(cx)?;
    cx.engine.roles.update(|catalog| {
        let grantees = grantee_names(grantees, catalog)?;
        match &target {
            Target::PublicSchema => {
                if !set.is_empty() && !matches!(privileges, Privileges::All { .. }) {
                    return Err(SqlError::new("0LP01", "invalid privilege type for schema")
                        .with_hint("A schema takes CREATE and USAGE."));
                }
                if !catalog.is_superuser(&me) && !catalog.is_member_of(&me, crate::privileges::DATABASE_OWNER)
                {
                    return Err(denied(format!("permission denied for schema {DEFAULT_SCHEMA}")));
                }
                // USAGE on public is PUBLIC's already (Postgres 15's default) and stays.
                let _ = usage;
                if create || matches!(privileges, Privileges::All { .. }) {
                    for grantee in &grantees {
                        catalog.change_public_create(grantee, grant);
                    }
                }
            }
            Target::Objects(objects) => {
                if create || usage {
                    return Err(SqlError::new(
                        "0LP01",
                        format!(
                            "invalid privilege type {} for relation",
                            if create { "CREATE" } else { "USAGE" }
                        ),
                    ));
                }
                for object in objects {
                    if !catalog.owns(&me, object.id) {
                        return Err(super::access::permission_denied(object));
                    }
                    for grantee in &grantees {
                        catalog.change_grant(object.id, grantee, set, grant);
                    }
                }
            }
        }
        Ok(())
    })?;
    tracing::info!(by = me, grant, privileges = %set.letters(), "privileges changed");
    Ok(Outcome::Command { tag: if grant { "GRANT" } else { "REVOKE" }, rows: None })
}
