//! Configuration: command-line flags over a TOML file over defaults. Every flag has a
//! config-file key of the same name (`--data-dir` is `data_dir`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:4566";
pub const DEFAULT_DATA_DIR: &str = "./weir-data";

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Log filter, e.g. `info` or `weir_server=debug` (overridden by WEIR_LOG / RUST_LOG).
    pub log: String,
    /// A SCRAM-SHA-256 verifier; when set, clients must authenticate with the password.
    pub password: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// How often the JobManager closes an epoch (`[streaming] barrier_interval_ms`).
    pub barrier_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 4566))),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            log: "info".into(),
            password: None,
            tls_cert: None,
            tls_key: None,
            barrier_interval_ms: 1000,
        }
    }
}

/// The TOML file layout.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub log: Option<String>,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub streaming: StreamingSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamingSection {
    pub barrier_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    pub password: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Flag values; `None` means "not given on the command line".
#[derive(Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub log: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Config {
    pub fn load(config_file: Option<&Path>, flags: Overrides) -> Result<Self, String> {
        let file: FileConfig = match config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| format!("invalid config file {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let defaults = Config::default();
        let listen_text = flags.listen.or(file.listen);
        let listen = match listen_text {
            Some(text) => text.parse().map_err(|e| format!("invalid listen address \"{text}\": {e}"))?,
            None => defaults.listen,
        };
        let config = Config {
            listen,
            data_dir: flags.data_dir.or(file.data_dir).unwrap_or(defaults.data_dir),
            log: flags.log.or(file.log).unwrap_or(defaults.log),
            password: file.auth.password,
            tls_cert: flags.tls_cert.or(file.tls.cert),
            tls_key: flags.tls_key.or(file.tls.key),
            barrier_interval_ms: match file.streaming.barrier_interval_ms {
                Some(0) => return Err("streaming.barrier_interval_ms must be at least 1".into()),
                Some(ms) => ms,
                None => 1000,
            },
        };
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        if !self.listen.ip().is_loopback() && self.password.is_none() {
            return Err(format!(
                "refusing to listen on {} without a password: trust authentication is only allowed on loopback. \
                 Set auth.password in the config file (generate it with `weir hash-password`)",
                self.listen
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("TLS needs both a certificate (tls.cert) and a key (tls.key)".into());
        }
        if let Some(verifier) = &self.password {
            crate::wire::auth::ScramVerifier::parse(verifier).map_err(|e| format!("auth.password: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_loopback_rule() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:5000\"\ndata_dir = \"/tmp/x\"\n").unwrap();
        let c =
            Config::load(Some(&path), Overrides { data_dir: Some("/tmp/y".into()), ..Default::default() })
                .unwrap();
        assert_eq!(c.listen.port(), 5000);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/y"));

        let err = Config::load(None, Overrides { listen: Some("0.0.0.0:4566".into()), ..Default::default() })
            .unwrap_err();
        assert!(err.contains("without a password"));

        std::fs::write(&path, "bogus = 1\n").unwrap();
        assert!(Config::load(Some(&path), Overrides::default()).is_err());
    }
}
