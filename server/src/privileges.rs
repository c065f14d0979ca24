//! Roles and privileges, as Postgres has them: who may log in, who owns what, and which
//! role may read or write which relation.
//!
//! * The **bootstrap role** is the user named in the config (`auth.user`, default `weir`).
//!   It is always a superuser, can log in, and is never dropped; it is not stored, so a
//!   config change renames it. It owns every relation created before roles existed.
//! * **Roles** made with `CREATE ROLE` carry the attributes `SUPERUSER`, `LOGIN`,
//!   `CREATEROLE` and a SCRAM-SHA-256 verifier (never the password).
//! * **Predefined roles** `pg_read_server_files`, `pg_write_server_files`,
//!   `pg_signal_backend`, `pg_read_all_stats` and `pg_database_owner` exist from the start
//!   with Postgres' oids; granting the first two lets a role use `file` sources and sinks,
//!   `pg_signal_backend` lets it cancel and terminate other roles' sessions, and
//!   `pg_read_all_stats` lets it see every session's query in `pg_stat_activity` (see
//!   `backends.rs`).
//! * **Ownership and ACLs**: the role that creates a table, view, source or sink owns it.
//!   An object nobody granted anything on has the default ACL (its owner has everything),
//!   shown as a NULL `relacl` as in Postgres; the first GRANT or REVOKE writes the ACL out
//!   with the owner's entry first. A superuser passes every check; the owner passes
//!   ownership checks (DROP, ALTER, COMMENT, GRANT).
//! * **Schema `public`**: as in Postgres 15, only its owner (`pg_database_owner`, whose one
//!   member is the bootstrap role) and superusers may create in it, unless `GRANT CREATE ON
//!   SCHEMA public` says otherwise.
//!
//! Membership is inherited (Postgres' default `INHERIT`): a member of a role has that role's
//! privileges and counts as its owner.
//!
//! The whole catalog is one small serde document, rewritten (synced) by every change: roles
//! and grants are few and change rarely, and one document makes every change atomic
//! without a format of its own. [`Roles`] serialises changes and hands statements an
//! immutable [`PrivilegeCatalog`] snapshot. The pure checks live on the snapshot and are
//! unit-tested below; handlers turn their answers into Postgres' errors.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use weir_planner::{sqlstate, SqlError, SqlResult};
use weir_storage::Store;

/// The bootstrap superuser's oid in Postgres.
pub const BOOTSTRAP_ROLE_OID: i64 = 10;
pub const READ_SERVER_FILES: &str = "pg_read_server_files";
pub const WRITE_SERVER_FILES: &str = "pg_write_server_files";
pub const DATABASE_OWNER: &str = "pg_database_owner";
/// Members may cancel and terminate other roles' sessions (not superusers').
pub const SIGNAL_BACKEND: &str = "pg_signal_backend";
/// Members see every session's activity in `pg_stat_activity`.
pub const READ_ALL_STATS: &str = "pg_read_all_stats";
/// Predefined roles: (oid, name), Postgres 15's oids.
pub const PREDEFINED_ROLES: &[(i64, &str)] = &[
    (3375, READ_ALL_STATS),
    (4200, SIGNAL_BACKEND),
    (4569, READ_SERVER_FILES),
    (4570, WRITE_SERVER_FILES),
    (6171, DATABASE_OWNER),
];
/// The first oid a created role gets, as in Postgres.
const FIRST_ROLE_OID: i64 = 16384;

/// A set of table privileges, with Postgres' ACL letters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivilegeSet(u8);

/// Postgres' table privileges in ACL order: (letter, keyword).
const TABLE_PRIVILEGES: [(char, &str); 7] = [
    ('a', "INSERT"),
    ('r', "SELECT"),
    ('w', "UPDATE"),
    ('d', "DELETE"),
    ('D', "TRUNCATE"),
    ('x', "REFERENCES"),
    ('t', "TRIGGER"),
];

impl PrivilegeSet {
    pub const NONE: PrivilegeSet = PrivilegeSet(0);
    pub const ALL: PrivilegeSet = PrivilegeSet(0b111_1111);
    pub const INSERT: PrivilegeSet = PrivilegeSet(1);
    pub const SELECT: PrivilegeSet = PrivilegeSet(1 << 1);
    pub const UPDATE: PrivilegeSet = PrivilegeSet(1 << 2);
    pub const DELETE: PrivilegeSet = PrivilegeSet(1 << 3);

    /// The privilege named by a `GRANT` keyword (`SELECT`, `TRUNCATE`, ...).
    pub fn from_keyword(keyword: &str) -> Option<PrivilegeSet> {
        TABLE_PRIVILEGES
            .iter()
            .position(|(_, k)| k.eq_ignore_ascii_case(keyword))
            .map(|i| PrivilegeSet(1 << i))
    }

    pub fn contains(self, other: PrivilegeSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: PrivilegeSet) -> PrivilegeSet {
        PrivilegeSet(self.0 | other.0)
    }

    pub fn without(self, other: PrivilegeSet) -> PrivilegeSet {
        PrivilegeSet(self.0 & !other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The ACL letters, e.g. `arwdDxt`.
    pub fn letters(self) -> String {
        TABLE_PRIVILEGES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, (c, _))| *c)
            .collect()
    }
}

/// A role made with `CREATE ROLE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub oid: i64,
    pub name: String,
    pub superuser: bool,
    pub login: bool,
    pub create_role: bool,
    /// A SCRAM-SHA-256 verifier (`SCRAM-SHA-256$...`); `None`: no password.
    pub password: Option<String>,
}

/// The owner of an object and, once anyone granted or revoked anything, its ACL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectAcl {
    pub owner: String,
    /// (grantee, privileges) in grant order, `""` for PUBLIC. `None`: the default ACL, all
    /// privileges to the owner.
    pub grants: Option<Vec<(String, PrivilegeSet)>>,
}

impl ObjectAcl {
    fn entries(&self) -> Vec<(String, PrivilegeSet)> {
        self.grants.clone().unwrap_or_else(|| vec![(self.owner.clone(), PrivilegeSet::ALL)])
    }
}

/// Who is what and may do what: the snapshot every check reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivilegeCatalog {
    roles: BTreeMap<String, Role>,
    next_oid: i64,
    /// (role, member): `member` is a member of `role`.
    memberships: Vec<(String, String)>,
    /// Tables, views, sources and sinks by id. An object without an entry belongs to the
    /// bootstrap role with the default ACL.
    objects: BTreeMap<u64, ObjectAcl>,
    /// Roles granted `CREATE ON SCHEMA public` (`""` for PUBLIC), in grant order.
    public_create: Vec<String>,
    /// The bootstrap role's name (from the config, not stored).
    #[serde(skip)]
    bootstrap: String,
}

impl Default for PrivilegeCatalog {
    fn default() -> Self {
        Self::empty(crate::config::DEFAULT_USER)
    }
}

/// A role as the catalogs list it, the bootstrap and predefined roles included.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleInfo {
    pub oid: i64,
    pub name: String,
    pub superuser: bool,
    pub login: bool,
    pub create_role: bool,
    /// Bootstrap-only attributes (`CREATEDB`, `REPLICATION`, `BYPASSRLS`).
    pub bootstrap: bool,
    pub password: Option<String>,
}

impl PrivilegeCatalog {
    pub fn empty(bootstrap: &str) -> Self {
        Self {
            roles: BTreeMap::new(),
            next_oid: FIRST_ROLE_OID,
            memberships: Vec::new(),
            objects: BTreeMap::new(),
            public_create: Vec::new(),
            bootstrap: bootstrap.to_string(),
        }
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Every role, by oid: the bootstrap role, the predefined roles, then created roles.
    pub fn roles(&self) -> Vec<RoleInfo> {
        let mut out = vec![RoleInfo {
            oid: BOOTSTRAP_ROLE_OID,
            name: self.bootstrap.clone(),
            superuser: true,
            login: true,
            create_role: true,
            bootstrap: true,
            password: None,
        }];
        out.extend(PREDEFINED_ROLES.iter().map(|(oid, name)| RoleInfo {
            oid: *oid,
            name: name.to_string(),
            superuser: false,
            login: false,
            create_role: false,
            bootstrap: false,
            password: None,
        }));
        let mut created: Vec<RoleInfo> = self
            .roles
            .values()
            .map(|r| RoleInfo {
                oid: r.oid,
                name: r.name.clone(),
                superuser: r.superuser,
                login: r.login,
                create_role: r.create_role,
                bootstrap: false,
                password: r.password.clone(),
            })
            .collect();
        created.sort_by_key(|r| r.oid);
        out.extend(created);
        out
    }

    pub fn role(&self, name: &str) -> Option<RoleInfo> {
        self.roles().into_iter().find(|r| r.name == name)
    }

    pub fn role_exists(&self, name: &str) -> bool {
        name == self.bootstrap
            || self.roles.contains_key(name)
            || PREDEFINED_ROLES.iter().any(|(_, n)| *n == name)
    }

    /// (role, member) pairs granted with `GRANT role TO member` (`pg_auth_members`).
    pub fn memberships(&self) -> Vec<(String, String)> {
        self.memberships.clone()
    }

    /// [`Self::memberships`] plus the bootstrap role's implicit membership in
    /// `pg_database_owner` (it owns the database; Postgres does not list that one either).
    fn effective_memberships(&self) -> Vec<(String, String)> {
        let mut out = vec![(DATABASE_OWNER.to_string(), self.bootstrap.clone())];
        out.extend(self.memberships.iter().cloned());
        out
    }

    pub fn is_superuser(&self, role: &str) -> bool {
        role == self.bootstrap || self.roles.get(role).is_some_and(|r| r.superuser)
    }

    /// Whether `role` is `group` or a member of it, directly or through other roles.
    pub fn is_member_of(&self, role: &str, group: &str) -> bool {
        let memberships = self.effective_memberships();
        let mut reached = vec![role.to_string()];
        let mut i = 0;
        while let Some(current) = reached.get(i).cloned() {
            if current == group {
                return true;
            }
            for (of, member) in &memberships {
                if *member == current && !reached.contains(of) {
                    reached.push(of.clone());
                }
            }
            i += 1;
        }
        false
    }

    pub fn owner_of(&self, object: u64) -> &str {
        self.objects.get(&object).map_or(self.bootstrap.as_str(), |acl| acl.owner.as_str())
    }

    /// Owner or superuser: may drop, alter, comment on and grant on `object`.
    pub fn owns(&self, role: &str, object: u64) -> bool {
        self.is_superuser(role) || self.is_member_of(role, self.owner_of(object))
    }

    /// Whether `role` holds every privilege of `wanted` on `object`.
    pub fn has_privilege(&self, role: &str, object: u64, wanted: PrivilegeSet) -> bool {
        if self.is_superuser(role) {
            return true;
        }
        let held = self
            .acl_of(object)
            .entries()
            .into_iter()
            .filter(|(grantee, _)| grantee.is_empty() || self.is_member_of(role, grantee))
            .fold(PrivilegeSet::NONE, |held, (_, set)| held.union(set));
        held.contains(wanted)
    }

    pub fn may_create_in_public(&self, role: &str) -> bool {
        self.is_superuser(role)
            || self.is_member_of(role, DATABASE_OWNER)
            || self.public_create.iter().any(|g| g.is_empty() || self.is_member_of(role, g))
    }

    fn acl_of(&self, object: u64) -> ObjectAcl {
        self.objects
            .get(&object)
            .cloned()
            .unwrap_or_else(|| ObjectAcl { owner: self.bootstrap.clone(), grants: None })
    }

    /// `relacl` of `object`: `None` for the default ACL, else Postgres' `grantee=letters/grantor`
    /// items (the grantor is the owner, who grants on behalf of superusers too).
    pub fn acl_items(&self, object: u64) -> Option<Vec<String>> {
        let acl = self.objects.get(&object)?;
        let grants = acl.grants.as_ref()?;
        Some(
            grants
                .iter()
                .filter(|(_, set)| !set.is_empty())
                .map(|(grantee, set)| {
                    format!("{}={}/{}", acl_name(grantee), set.letters(), acl_name(&acl.owner))
                })
                .collect(),
        )
    }

    /// `nspacl` of `public`: Postgres 15's default plus every `GRANT CREATE`.
    pub fn public_schema_acl(&self) -> Vec<String> {
        let mut out = vec![format!("{DATABASE_OWNER}=UC/{DATABASE_OWNER}"), format!("=U/{DATABASE_OWNER}")];
        for grantee in &self.public_create {
            if grantee.is_empty() {
                out[1] = format!("=UC/{DATABASE_OWNER}");
            } else {
                out.push(format!("{}=C/{DATABASE_OWNER}", acl_name(grantee)));
            }
        }
        out
    }

    /// Why `role` cannot be dropped: Postgres' `DETAIL` lines (`owner of table t`,
    /// `privileges for table t`), given the kind and name of each existing object.
    pub fn dependents(&self, role: &str, describe: &dyn Fn(u64) -> Option<String>) -> Vec<String> {
        let mut out = Vec::new();
        if self.public_create.iter().any(|g| g == role) {
            out.push("privileges for schema public".to_string());
        }
        for (id, acl) in &self.objects {
            let Some(object) = describe(*id) else { continue };
            if acl.owner == role {
                out.push(format!("owner of {object}"));
            } else if acl.grants.as_ref().is_some_and(|g| g.iter().any(|(grantee, _)| grantee == role)) {
                out.push(format!("privileges for {object}"));
            }
        }
        out
    }

    // ---------------------------------------------------------------------------------
    // Changes (applied by [`Roles::update`] to a copy, persisted, then published)

    pub fn create_role(&mut self, mut role: Role) -> SqlResult<()> {
        if self.role_exists(&role.name) {
            return Err(SqlError::new("42710", format!("role \"{}\" already exists", role.name)));
        }
        role.oid = self.next_oid;
        self.next_oid += 1;
        self.roles.insert(role.name.clone(), role);
        Ok(())
    }

    /// The created role `name`, to change; the bootstrap and predefined roles are refused.
    pub fn role_mut(&mut self, name: &str) -> SqlResult<&mut Role> {
        if name == self.bootstrap {
            return Err(SqlError::new(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                format!("cannot alter the bootstrap superuser \"{name}\""),
            )
            .with_detail("It is configured in the config file (auth.user, auth.password)."));
        }
        if PREDEFINED_ROLES.iter().any(|(_, n)| *n == name) {
            return Err(SqlError::new(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                format!("cannot alter reserved role \"{name}\""),
            ));
        }
        self.roles.get_mut(name).ok_or_else(|| undefined_role(name))
    }

    /// Removes role `name` with its memberships (the caller checked it owns nothing).
    pub fn drop_role(&mut self, name: &str) -> SqlResult<()> {
        self.roles.remove(name).ok_or_else(|| undefined_role(name))?;
        self.memberships.retain(|(role, member)| role != name && member != name);
        Ok(())
    }

    /// Makes `member` a member of `role`; false if it already was.
    pub fn grant_membership(&mut self, role: &str, member: &str) -> SqlResult<bool> {
        for name in [role, member] {
            if !self.role_exists(name) {
                return Err(undefined_role(name));
            }
        }
        if self.effective_memberships().iter().any(|(r, m)| r == role && m == member) {
            return Ok(false);
        }
        if self.is_member_of(role, member) {
            return Err(SqlError::new("0LP01", format!("role \"{role}\" is a member of role \"{member}\"")));
        }
        if role == DATABASE_OWNER {
            return Err(SqlError::new(
                "0LP01",
                format!("role \"{DATABASE_OWNER}\" cannot have explicit members"),
            ));
        }
        self.memberships.push((role.to_string(), member.to_string()));
        Ok(true)
    }

    /// Ends `member`'s membership in `role`; false if it was not a member.
    pub fn revoke_membership(&mut self, role: &str, member: &str) -> SqlResult<bool> {
        for name in [role, member] {
            if !self.role_exists(name) {
                return Err(undefined_role(name));
            }
        }
        let before = self.memberships.len();
        self.memberships.retain(|(r, m)| !(r == role && m == member));
        Ok(self.memberships.len() != before)
    }

    pub fn set_owner(&mut self, object: u64, owner: &str) {
        self.objects.insert(object, ObjectAcl { owner: owner.to_string(), grants: None });
    }

    pub fn forget_object(&mut self, object: u64) {
        self.objects.remove(&object);
    }

    /// Adds (`grant`) or removes privileges of `grantee` (`""`: PUBLIC) on `object`.
    pub fn change_grant(&mut self, object: u64, grantee: &str, privileges: PrivilegeSet, grant: bool) {
        let mut acl = self.acl_of(object);
        let mut entries = acl.entries();
        match entries.iter_mut().find(|(g, _)| g == grantee) {
            Some((_, set)) if grant => *set = set.union(privileges),
            Some((_, set)) => *set = set.without(privileges),
            None if grant => entries.push((grantee.to_string(), privileges)),
            None => {}
        }
        // The owner's entry stays (possibly empty) as in Postgres; other empty ones go.
        entries.retain(|(g, set)| !set.is_empty() || *g == acl.owner);
        acl.grants = Some(entries);
        self.objects.insert(object, acl);
    }

    pub fn change_public_create(&mut self, grantee: &str, grant: bool) {
        let present = self.public_create.iter().any(|g| g == grantee);
        if grant && !present {
            self.public_create.push(grantee.to_string());
        } else if !grant {
            self.public_create.retain(|g| g != grantee);
        }
    }
}

/// A role name as an ACL item prints it (PUBLIC is empty).
fn acl_name(role: &str) -> String {
    if role.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        role.to_string()
    } else {
        format!("\"{}\"", role.replace('"', "\"\""))
    }
}

pub fn undefined_role(name: &str) -> SqlError {
    SqlError::new(sqlstate::UNDEFINED_OBJECT, format!("role \"{name}\" does not exist"))
}

/// The durable privilege catalog: one published snapshot, changed one statement at a time.
pub struct Roles {
    store: Arc<Store>,
    current: RwLock<Arc<PrivilegeCatalog>>,
    /// Serialises changes, so two statements never both start from the same snapshot.
    writer: Mutex<()>,
}

impl Roles {
    /// Loads the catalog (an empty one for a new data directory), with `bootstrap` as the
    /// bootstrap superuser. A stored role of that name would shadow it, so it is refused.
    pub fn open(store: Arc<Store>, bootstrap: &str) -> Result<Self, String> {
        let mut catalog = match store.privileges_document().map_err(|e| e.to_string())? {
            Some(bytes) => serde_json::from_slice::<PrivilegeCatalog>(&bytes)
                .map_err(|e| format!("the stored roles and privileges are unreadable: {e}"))?,
            None => PrivilegeCatalog::empty(bootstrap),
        };
        catalog.bootstrap = bootstrap.to_string();
        if catalog.roles.contains_key(bootstrap) {
            return Err(format!(
                "auth.user \"{bootstrap}\" is also a role created with CREATE ROLE: choose another bootstrap user \
                 name, or drop that role first"
            ));
        }
        tracing::info!(roles = catalog.roles.len(), bootstrap, "roles loaded");
        Ok(Self { store, current: RwLock::new(Arc::new(catalog)), writer: Mutex::new(()) })
    }

    pub fn snapshot(&self) -> Arc<PrivilegeCatalog> {
        self.current.read().map(|c| c.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Applies `change` to a copy of the catalog, stores it (synced) and publishes it. A
    /// change that fails, or a write that fails, leaves the catalog as it was.
    pub fn update<T>(&self, change: impl FnOnce(&mut PrivilegeCatalog) -> SqlResult<T>) -> SqlResult<T> {
        let _writer = self.writer.lock().map_err(|_| SqlError::internal("role catalog lock poisoned"))?;
        let mut next = (*self.snapshot()).clone();
        let result = change(&mut next)?;
        let bytes =
            serde_json::to_vec(&next).map_err(|e| SqlError::internal(format!("encode roles: {e}")))?;
        self.store.set_privileges_document(&bytes).map_err(crate::wire::errors::from_storage)?;
        *self.current.write().map_err(|_| SqlError::internal("role catalog lock poisoned"))? = Arc::new(next);
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> Role {
        Role { oid: 0, name: name.into(), superuser: false, login: true, create_role: false, password: None }
    }

    fn catalog() -> PrivilegeCatalog {
        let mut c = PrivilegeCatalog::empty("weir");
        c.create_role(role("alice")).unwrap();
        c.create_role(role("bob")).unwrap();
        c
    }

    #[test]
    fn owner_and_superuser_hold_everything_others_nothing() {
        let mut c = catalog();
        c.set_owner(1, "alice");
        assert!(c.has_privilege("alice", 1, PrivilegeSet::ALL));
        assert!(c.has_privilege("weir", 1, PrivilegeSet::ALL));
        assert!(!c.has_privilege("bob", 1, PrivilegeSet::SELECT));
        assert!(c.owns("alice", 1) && c.owns("weir", 1) && !c.owns("bob", 1));
        // Objects from before roles existed belong to the bootstrap role.
        assert_eq!(c.owner_of(99), "weir");
        assert!(!c.has_privilege("alice", 99, PrivilegeSet::SELECT));
        assert_eq!(c.acl_items(1), None);
    }

    #[test]
    fn grants_and_revokes_print_as_postgres_acls() {
        let mut c = catalog();
        c.set_owner(1, "weir");
        c.change_grant(1, "alice", PrivilegeSet::SELECT.union(PrivilegeSet::INSERT), true);
        c.change_grant(1, "bob", PrivilegeSet::ALL, true);
        c.change_grant(1, "", PrivilegeSet::UPDATE, true);
        assert_eq!(
            c.acl_items(1).unwrap(),
            ["weir=arwdDxt/weir", "alice=ar/weir", "bob=arwdDxt/weir", "=w/weir"]
        );
        assert!(c.has_privilege("alice", 1, PrivilegeSet::SELECT));
        assert!(!c.has_privilege("alice", 1, PrivilegeSet::DELETE));
        // PUBLIC's grant reaches everyone.
        assert!(c.has_privilege("alice", 1, PrivilegeSet::UPDATE));
        c.change_grant(1, "bob", PrivilegeSet::ALL, false);
        c.change_grant(1, "alice", PrivilegeSet::INSERT, false);
        assert_eq!(c.acl_items(1).unwrap(), ["weir=arwdDxt/weir", "alice=r/weir", "=w/weir"]);
        assert!(!c.has_privilege("bob", 1, PrivilegeSet::SELECT));
    }

    #[test]
    fn membership_is_inherited_and_transitive_without_cycles() {
        let mut c = catalog();
        c.create_role(role("readers")).unwrap();
        c.set_owner(1, "weir");
        c.change_grant(1, "readers", PrivilegeSet::SELECT, true);
        assert!(c.grant_membership("readers", "bob").unwrap());
        assert!(!c.grant_membership("readers", "bob").unwrap());
        assert!(c.has_privilege("bob", 1, PrivilegeSet::SELECT));
        assert!(c.grant_membership(READ_SERVER_FILES, "readers").unwrap());
        assert!(c.is_member_of("bob", READ_SERVER_FILES));
        assert!(!c.is_member_of("alice", READ_SERVER_FILES));
        let cycle = c.grant_membership("bob", "readers").unwrap_err();
        assert_eq!(cycle.code, "0LP01");
        assert!(c.revoke_membership("readers", "bob").unwrap());
        assert!(!c.revoke_membership("readers", "bob").unwrap());
        assert!(!c.has_privilege("bob", 1, PrivilegeSet::SELECT));
        assert_eq!(c.grant_membership("nobody", "bob").unwrap_err().code, "42704");
    }

    #[test]
    fn public_schema_create_follows_postgres_15() {
        let mut c = catalog();
        assert!(c.may_create_in_public("weir"));
        assert!(!c.may_create_in_public("alice"));
        c.change_public_create("alice", true);
        assert!(c.may_create_in_public("alice") && !c.may_create_in_public("bob"));
        assert_eq!(
            c.public_schema_acl(),
            ["pg_database_owner=UC/pg_database_owner", "=U/pg_database_owner", "alice=C/pg_database_owner"]
        );
        c.change_public_create("alice", false);
        assert!(!c.may_create_in_public("alice"));
    }

    #[test]
    fn dependents_name_owned_objects_and_grants() {
        let mut c = catalog();
        c.set_owner(1, "weir");
        c.change_grant(1, "alice", PrivilegeSet::SELECT, true);
        c.set_owner(2, "alice");
        c.set_owner(3, "alice");
        c.change_public_create("alice", true);
        let describe = |id: u64| match id {
            1 => Some("table t".to_string()),
            2 => Some("table t2".to_string()),
            _ => None, // dropped
        };
        assert_eq!(
            c.dependents("alice", &describe),
            ["privileges for schema public", "privileges for table t", "owner of table t2"]
        );
        assert!(c.dependents("bob", &describe).is_empty());
    }

    #[test]
    fn reserved_roles_cannot_be_created_twice_or_altered() {
        let mut c = catalog();
        assert_eq!(c.create_role(role("alice")).unwrap_err().code, "42710");
        assert_eq!(c.create_role(role("weir")).unwrap_err().code, "42710");
        assert!(c.role_mut("weir").is_err() && c.role_mut(READ_SERVER_FILES).is_err());
        assert_eq!(c.role("alice").unwrap().oid, FIRST_ROLE_OID);
        assert_eq!(c.role("bob").unwrap().oid, FIRST_ROLE_OID + 1);
        c.drop_role("alice").unwrap();
        assert!(!c.role_exists("alice"));
    }

    #[test]
    fn the_catalog_survives_serialization() {
        let mut c = catalog();
        c.set_owner(4, "bob");
        c.change_grant(4, "alice", PrivilegeSet::DELETE, true);
        c.grant_membership(WRITE_SERVER_FILES, "alice").unwrap();
        let mut back: PrivilegeCatalog = serde_json::from_slice(&serde_json::to_vec(&c).unwrap()).unwrap();
        back.bootstrap = "weir".into();
        assert_eq!(back, c);
    }
}
