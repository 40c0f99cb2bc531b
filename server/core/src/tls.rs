//! TLS with rustls. Browsers speak HTTP/2 only over TLS, and HTTP/2 is what lets the event
//! stream and every fetch of a page share one connection. For development, a self-signed
//! certificate for `localhost` and `127.0.0.1` is made once (rcgen) and kept in the data
//! directory, so a browser told to trust it once keeps trusting it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where the development certificate lives inside the data directory.
const DEV_DIR: &str = "dev-tls";

/// The certificate and key files to serve with: the given pair, or with `self_signed` the
/// development pair kept in `data_dir` (made the first time).
pub fn certificate_files(
    cert: Option<&Path>,
    key: Option<&Path>,
    self_signed_in: Option<&Path>,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok((cert.to_owned(), key.to_owned())),
        (None, None) if self_signed_in.is_some() => {
            self_signed(&self_signed_in.unwrap_or(Path::new(".")).join(DEV_DIR))
        }
        _ => anyhow::bail!(
            "TLS needs both --tls-cert and --tls-key, or --tls-self-signed for development"
        ),
    }
}

fn self_signed(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names)?;
    std::fs::write(&cert_path, certified.cert.pem())?;
    write_private(&key_path, certified.signing_key.serialize_pem().as_bytes())?;
    tracing::info!(cert = %cert_path.display(), "made a self-signed development certificate");
    Ok((cert_path, key_path))
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)?;
    Ok(())
}

/// A rustls server configuration (ring as the crypto provider) for the given PEM files.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key do not match")?;
    Ok(config)
}
