//! Commands that mint keys and tokens; none needs a database.

use std::path::Path;

use crate::error::{AdminError, Result};
use crate::signing::SnapshotSigner;

/// Mints a force token for `environment`, valid for `ttl` seconds (at most `max_ttl`); needs
/// no database. It is signed with the force key derived from `CLEAVE_SIGNING_KEY`.
pub fn force_token(
    force: &[(String, String)],
    environment: &str,
    ttl: u32,
    max_ttl: u32,
    key: Option<&str>,
) -> Result<()> {
    let keys = signing_keys(key)?;
    if ttl > max_ttl {
        return Err(AdminError::BadRequest(format!(
            "--ttl {ttl} is longer than the maximum lifetime of {max_ttl} s \
             (workers refuse longer-lived tokens; raise CLEAVE_FORCE_MAX_SECONDS on both)"
        )));
    }
    let issued_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let claims = cleave_core::force::Claims {
        environment: environment.to_owned(),
        issued_ms,
        expires_ms: issued_ms + i64::from(ttl) * 1000,
        forced: force.iter().cloned().collect(),
    };
    let token = cleave_core::force::mint(&keys.force, &claims).map_err(|_| {
        AdminError::BadRequest(format!(
            "the environment, experiment and variant keys must match {}, and --ttl must be at \
             least 1",
            cleave_core::keys::GRAMMAR
        ))
    })?;
    println!("{token}");
    Ok(())
}

/// Prints the key origins verify `cleave-signature` with (hex): derived from
/// `CLEAVE_SIGNING_KEY`, and useless for minting force tokens or sticky records.
pub fn header_key(key: Option<&str>) -> Result<()> {
    let keys = signing_keys(key)?;
    println!("{}", hex::encode(keys.headers));
    Ok(())
}

fn signing_keys(key: Option<&str>) -> Result<cleave_core::signing_keys::SigningKeys> {
    key.and_then(|k| cleave_core::signing_keys::SigningKeys::derive(k.as_bytes()))
        .ok_or_else(|| {
            AdminError::BadRequest(
                "CLEAVE_SIGNING_KEY is not set (or pass --signing-key)".to_owned(),
            )
        })
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

/// Prints the public key of the configured snapshot signing key.
pub fn public_key(signing: &super::SigningArgs) -> Result<()> {
    let signer = signing.signer()?.ok_or_else(|| {
        AdminError::BadRequest(
            "no snapshot signing key: set CLEAVE_SNAPSHOT_SIGNING_KEY or CLEAVE_SNAPSHOT_SIGNING_KEY_FILE"
                .to_owned(),
        )
    })?;
    println!("{}", signer.public_key());
    Ok(())
}
