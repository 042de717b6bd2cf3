//! Commands that mint keys and tokens; none needs a database.

use std::path::Path;

use crate::error::{AdminError, Result};
use crate::signing::SnapshotSigner;

/// Mints a force token; needs no database.
pub fn force_token(force: &[(String, String)], ttl: u32, key: Option<&str>) -> Result<()> {
    let key = key.filter(|k| !k.is_empty()).ok_or_else(|| {
        AdminError::BadRequest("CLEAVE_SIGNING_KEY is not set (or pass --signing-key)".to_owned())
    })?;
    let expires_ms =
        time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + i64::from(ttl) * 1000;
    let pairs = force.iter().cloned().collect();
    let token = cleave_core::force::mint(key.as_bytes(), &pairs, expires_ms).map_err(|_| {
        AdminError::BadRequest(
            "experiment and variant keys must match [a-z][a-z0-9_.-]{0,63}".to_owned(),
        )
    })?;
    println!("{token}");
    Ok(())
}

/// Writes a new signing key to `out` (never over an existing file) and prints its public key.
pub fn keygen(out: &Path) -> Result<()> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    let signer = SnapshotSigner::generate().map_err(AdminError::Internal)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(out)
        .map_err(|e| AdminError::BadRequest(format!("{}: {e}", out.display())))?;
    writeln!(file, "{}", signer.seed_text())
        .map_err(|e| AdminError::Internal(format!("{}: {e}", out.display())))?;
    eprintln!(
        "wrote the private key to {}; give the admin CLEAVE_SNAPSHOT_SIGNING_KEY_FILE={} and the worker this public key:",
        out.display(),
        out.display()
    );
    println!("CLEAVE_SNAPSHOT_PUBLIC_KEY={}", signer.public_key());
    Ok(())
}
