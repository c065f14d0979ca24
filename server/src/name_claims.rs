//! Relation names claimed by statements that are creating them and have not committed.
//!
//! In Postgres a relation created by a transaction that has not committed is invisible to
//! every other session (`42P01` for its name), and a second `CREATE` of the same name waits
//! on the catalog's unique index: it fails with `42P07` if the first commits, and succeeds if
//! the first aborts. Weir's `CREATE MATERIALIZED VIEW` runs its backfill (seconds, minutes)
//! before it commits, and writes the view's catalog entry only then, so nobody sees or builds
//! on a view that may still be undone. Meanwhile its name is claimed here: every statement
//! that creates or renames to a name ([`NameClaims::claim`]) first waits until no other
//! statement holds a claim on it, then checks whether the name is taken, as Postgres'
//! waiting on the unique index does. The wait is cancellable (`57014`), like any wait of a
//! statement that has not started writing.
//!
//! A statement claims one name at a time, so claims cannot deadlock.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

type Key = (String, String);

#[derive(Debug, Default)]
pub struct NameClaims {
    held: Mutex<HashSet<Key>>,
    /// Woken whenever a claim is released.
    released: Notify,
}

/// A claim on a relation name; released when dropped (the statement ended, however).
pub struct NameClaim {
    claims: Arc<NameClaims>,
    key: Key,
}

impl Drop for NameClaim {
    fn drop(&mut self) {
        match self.claims.held.lock() {
            Ok(mut held) => held.remove(&self.key),
            Err(poisoned) => poisoned.into_inner().remove(&self.key),
        };
        self.claims.released.notify_waiters();
    }
}

impl NameClaims {
    /// Claims `schema.name` if no other statement holds a claim on it (for statements that
    /// cannot wait, such as a rename).
    pub fn try_claim(self: &Arc<Self>, schema: &str, name: &str) -> Option<NameClaim> {
        let key = (schema.to_string(), name.to_string());
        let claimed = match self.held.lock() {
            Ok(mut held) => held.insert(key.clone()),
            Err(poisoned) => poisoned.into_inner().insert(key.clone()),
        };
        claimed.then(|| NameClaim { claims: self.clone(), key })
    }

    /// Claims `schema.name`, first waiting for any other statement's claim on it to end.
    pub async fn claim(self: &Arc<Self>, schema: &str, name: &str) -> NameClaim {
        let key = (schema.to_string(), name.to_string());
        let mut waited = false;
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let claimed = match self.held.lock() {
                Ok(mut held) => held.insert(key.clone()),
                Err(poisoned) => poisoned.into_inner().insert(key.clone()),
            };
            if claimed {
                if waited {
                    tracing::info!(schema, name, "the concurrent statement creating this name ended");
                }
                return NameClaim { claims: self.clone(), key };
            }
            if !waited {
                tracing::info!(schema, name, "waiting for a concurrent statement creating this name");
                waited = true;
            }
            released.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_second_claim_waits_for_the_first_to_end() {
        let claims = Arc::new(NameClaims::default());
        let first = claims.claim("public", "v").await;
        let other = claims.claim("public", "w").await;
        let waiting = {
            let claims = claims.clone();
            tokio::spawn(async move { claims.claim("public", "v").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the same name waits");
        drop(other);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "another name's release does not end the wait");
        assert!(claims.try_claim("public", "v").is_none(), "held");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(matches!(second, Ok(Ok(_))), "claimed once the first ended");
    }
}
