//! The VAPID key pair: the public key is what pages give `pushManager.subscribe` as the
//! `applicationServerKey`; the private key signs each push's `Authorization` and is never
//! printed or served.

use std::path::Path;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use web_push_native::jwt_simple::algorithms::{ECDSAP256KeyPairLike, ES256KeyPair};

/// The server's VAPID key pair.
pub struct VapidKeys {
    pair: ES256KeyPair,
    public_base64: String,
}

impl VapidKeys {
    /// The pair kept in `file` (PEM, PKCS#8), made and written (mode 0600) when missing.
    pub fn load_or_create(file: &Path) -> anyhow::Result<Self> {
        let pair = if file.exists() {
            let pem = std::fs::read_to_string(file)
                .with_context(|| format!("reading the VAPID key {}", file.display()))?;
            ES256KeyPair::from_pem(&pem).map_err(|e| {
                anyhow::anyhow!("the VAPID key {} is not valid: {e}", file.display())
            })?
        } else {
            let pair = ES256KeyPair::generate();
            let pem = pair
                .to_pem()
                .map_err(|e| anyhow::anyhow!("encoding the VAPID key: {e}"))?;
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            write_private(file, pem.as_bytes())
                .with_context(|| format!("writing the VAPID key {}", file.display()))?;
            tracing::info!(file = %file.display(), "made a VAPID key pair for Web Push");
            pair
        };
        let public = pair.key_pair().public_key().to_bytes_uncompressed();
        Ok(Self {
            public_base64: URL_SAFE_NO_PAD.encode(public),
            pair,
        })
    }

    /// The public key, uncompressed, in unpadded base64url: the `applicationServerKey`.
    pub fn public_base64(&self) -> &str {
        &self.public_base64
    }

    /// The pair, to sign with.
    pub fn pair(&self) -> &ES256KeyPair {
        &self.pair
    }
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("push/vapid.pem");
        let made = VapidKeys::load_or_create(&file).unwrap();
        let read = VapidKeys::load_or_create(&file).unwrap();
        assert_eq!(made.public_base64(), read.public_base64());
        assert_eq!(
            URL_SAFE_NO_PAD.decode(made.public_base64()).unwrap().len(),
            65
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the private key is for the owner only");
        }
    }
}
