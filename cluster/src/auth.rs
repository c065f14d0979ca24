//! The cluster secret: every control and data call carries it in request metadata, and a
//! server with a secret configured refuses calls without the same one.

use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

/// The metadata entry that carries the secret.
pub const SECRET_HEADER: &str = "x-weir-cluster-secret";

/// The secret a process presents and expects; `None` only on loopback-only clusters.
#[derive(Clone, Default)]
pub struct ClusterSecret(Option<std::sync::Arc<str>>);

impl ClusterSecret {
    pub fn new(secret: Option<String>) -> Self {
        Self(secret.filter(|s| !s.is_empty()).map(Into::into))
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Adds the secret to an outgoing request.
    pub fn attach<T>(&self, request: &mut Request<T>) -> Result<(), Status> {
        if let Some(secret) = &self.0 {
            let value = MetadataValue::try_from(secret.as_ref())
                .map_err(|_| Status::invalid_argument("the cluster secret must be printable ASCII"))?;
            request.metadata_mut().insert(SECRET_HEADER, value);
        }
        Ok(())
    }

    /// Refuses a request that does not carry this secret.
    pub fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(expected) = &self.0 else { return Ok(()) };
        let presented = request.metadata().get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        if constant_time_eq(presented, expected.as_bytes()) {
            return Ok(());
        }
        let from =
            request.remote_addr().map(|a| a.to_string()).unwrap_or_else(|| "an unknown address".into());
        tracing::warn!(peer = %from, "refused a cluster connection without the right cluster secret");
        Err(Status::unauthenticated(
            "cluster secret missing or wrong: set cluster.secret or WEIR_CLUSTER_SECRET to the JobManager's",
        ))
    }
}

/// Compares without returning early, so timing does not tell how much of a guess matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_secret_passes() {
        let secret = ClusterSecret::new(Some("s3cret".into()));
        let mut ok = Request::new(());
        secret.attach(&mut ok).unwrap();
        assert!(secret.check(&ok).is_ok());
        let mut wrong = Request::new(());
        ClusterSecret::new(Some("guess".into())).attach(&mut wrong).unwrap();
        assert_eq!(secret.check(&wrong).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert_eq!(secret.check(&Request::new(())).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert!(ClusterSecret::new(None).check(&Request::new(())).is_ok(), "no secret: loopback only");
    }
}
