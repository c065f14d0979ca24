//! TLS between cluster processes: the JobManager's rpc service and every TaskManager's data
//! service serve TLS with the process's certificate, and every call verifies the peer's
//! certificate against the cluster's CA, both ways (mutual TLS). The cluster secret is
//! still checked on every call.
//!
//! Configured with `cluster.tls_cert`, `cluster.tls_key` and `cluster.tls_ca` (PEM files);
//! a process's certificate must name the host part of the address others reach it at (its
//! `--rpc` or data address) as a DNS name or IP address.

use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

#[derive(Clone)]
pub struct ClusterTls {
    identity: Identity,
    ca: Certificate,
}

impl ClusterTls {
    /// Reads the process's certificate chain and key and the cluster's CA certificate.
    pub fn load(cert: &Path, key: &Path, ca: &Path) -> Result<Self, String> {
        let read = |path: &Path, what: &str| {
            std::fs::read(path)
                .map_err(|e| format!("cannot read the cluster TLS {what} {}: {e}", path.display()))
        };
        let (cert, key, ca) = (read(cert, "certificate")?, read(key, "key")?, read(ca, "CA certificate")?);
        for (pem, what) in [(&cert, "certificate"), (&key, "key"), (&ca, "CA certificate")] {
            if !String::from_utf8_lossy(pem).contains("-----BEGIN") {
                return Err(format!("the cluster TLS {what} is not a PEM file"));
            }
        }
        Ok(Self { identity: Identity::from_pem(cert, key), ca: Certificate::from_pem(ca) })
    }

    /// What a server of this process presents and whose clients it accepts.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new().identity(self.identity.clone()).client_ca_root(self.ca.clone())
    }

    /// An endpoint for `address` (`HOST:PORT`): `https` with this process's certificate and
    /// the cluster's CA when `tls` is set, plain `http` otherwise.
    pub fn endpoint(tls: Option<&ClusterTls>, address: &str) -> Result<Endpoint, String> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
            .map_err(|e| format!("bad address {address}: {e}"))?;
        match tls {
            None => Ok(endpoint),
            Some(tls) => endpoint
                .tls_config(
                    ClientTlsConfig::new().ca_certificate(tls.ca.clone()).identity(tls.identity.clone()),
                )
                .map_err(|e| format!("TLS to {address}: {e}")),
        }
    }
}
