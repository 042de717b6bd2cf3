//! Where publishes go and how they are signed: the flags and variables both name.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use crate::error::{AdminError, Result};
use crate::relay::Relay;
use crate::signing::SnapshotSigner;
use crate::sink::{Namespaces, PerEnvironment, Sink};

#[derive(Debug, Clone, Args)]
pub struct SigningArgs {
    /// Ed25519 key (base64url seed, see `keygen`) that signs every published snapshot.
    #[arg(
        long,
        env = "CLEAVE_SNAPSHOT_SIGNING_KEY",
        global = true,
        hide_env_values = true
    )]
    pub snapshot_signing_key: Option<String>,
    /// File holding that key instead.
    #[arg(long, env = "CLEAVE_SNAPSHOT_SIGNING_KEY_FILE", global = true)]
    pub snapshot_signing_key_file: Option<PathBuf>,
    /// Seconds a signed pointer stays valid; `serve` re-signs current pointers every quarter
    /// of this (at most hourly). Workers refuse an expired pointer, so a replayed or frozen
    /// pointer lasts at most this long.
    #[arg(
        long,
        env = "CLEAVE_POINTER_VALIDITY",
        global = true,
        default_value_t = 86_400,
        value_parser = clap::value_parser!(u64).range(60..)
    )]
    pub pointer_validity: u64,
}

impl SigningArgs {
    /// The configured snapshot signer, if any.
    ///
    /// # Errors
    /// When the key is malformed or unreadable.
    pub fn signer(&self) -> Result<Option<Arc<SnapshotSigner>>> {
        SnapshotSigner::configured(
            self.snapshot_signing_key
                .as_deref()
                .filter(|k| !k.is_empty()),
            self.snapshot_signing_key_file.as_deref(),
        )
        .map(|s| {
            s.map(|s| {
                Arc::new(s.with_validity(std::time::Duration::from_secs(self.pointer_validity)))
            })
        })
        .map_err(AdminError::BadRequest)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkKind {
    /// The local KV of the repo checkout, read by `npx wrangler dev` there.
    WranglerLocal,
    /// Workers KV through the Cloudflare REST API.
    Cloudflare,
    /// A folder such as config-snapshots/.
    File,
}

#[derive(Debug, Clone, Args)]
pub struct SinkArgs {
    /// Where publishes go.
    #[arg(
        long = "sink",
        env = "CLEAVE_SINK",
        global = true,
        value_enum,
        default_value = "wrangler-local"
    )]
    pub kind: SinkKind,
    /// Repo checkout whose local KV `wrangler-local` writes (its node_modules has wrangler).
    /// Default: the nearest folder upwards from here holding wrangler.toml, else the checkout
    /// this binary was built from.
    #[arg(long, env = "CLEAVE_REPO_ROOT", global = true)]
    pub repo_root: Option<PathBuf>,
    /// `--persist-to` for the local KV (default: wrangler's own, .wrangler/state).
    #[arg(long, env = "CLEAVE_KV_PERSIST_TO", global = true)]
    pub kv_persist_to: Option<PathBuf>,
    /// Folder for the `file` sink.
    #[arg(
        long,
        env = "CLEAVE_SINK_DIR",
        global = true,
        default_value = "config-snapshots"
    )]
    pub sink_dir: PathBuf,
    #[arg(long, env = "CF_ACCOUNT_ID", global = true)]
    pub cf_account_id: Option<String>,
    /// Workers KV namespace id, or one per environment: `staging=<id>,production=<id>`
    /// (`*=<id>` for the rest).
    #[arg(long, env = "CF_KV_NAMESPACE_ID", global = true)]
    pub cf_namespace_id: Option<String>,
    #[arg(long, env = "CF_API_TOKEN", global = true, hide_env_values = true)]
    pub cf_api_token: Option<String>,
    #[arg(
        long,
        env = "CF_API_BASE",
        global = true,
        default_value = "https://api.cloudflare.com/client/v4"
    )]
    pub cf_api_base: String,
    /// The worker each environment's pointer is pushed to before KV is written, so changes
    /// reach every location within its refresh interval: one base URL, or
    /// `staging=<url>,production=<url>`. Needs CLEAVE_PUBLISH_TOKEN.
    #[arg(long, env = "CLEAVE_WORKER_URL", global = true)]
    pub worker_url: Option<String>,
    /// The worker's CLEAVE_PUBLISH_TOKEN secret.
    #[arg(
        long,
        env = "CLEAVE_PUBLISH_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub publish_token: Option<String>,
}

impl SinkArgs {
    /// Where pointers are pushed, when CLEAVE_WORKER_URL is set.
    ///
    /// # Errors
    /// When one of CLEAVE_WORKER_URL and CLEAVE_PUBLISH_TOKEN is set without the other, or the
    /// URL list is malformed.
    pub fn relay(&self) -> Result<Option<Relay>> {
        match (&self.worker_url, &self.publish_token) {
            (None, None) => Ok(None),
            (Some(urls), Some(token)) => {
                let workers = PerEnvironment::parse_var(urls, "CLEAVE_WORKER_URL", "worker URL")
                    .map_err(AdminError::BadRequest)?;
                Ok(Some(Relay { workers, token: token.clone() }))
            }
            (Some(_), None) => Err(AdminError::BadRequest(
                "CLEAVE_WORKER_URL needs CLEAVE_PUBLISH_TOKEN (the worker's secret of that name)".to_owned(),
            )),
            (None, Some(_)) => Err(AdminError::BadRequest(
                "CLEAVE_PUBLISH_TOKEN is set but CLEAVE_WORKER_URL is not: no worker to push pointers to".to_owned(),
            )),
        }
    }

    /// The configured sink.
    ///
    /// # Errors
    /// When the `cloudflare` sink lacks its account, namespace or token.
    pub fn sink(&self) -> Result<Sink> {
        Ok(match self.kind {
            SinkKind::WranglerLocal => Sink::WranglerLocal {
                root: self.repo_root.clone().unwrap_or_else(default_repo_root),
                persist_to: self.kv_persist_to.clone(),
            },
            SinkKind::File => Sink::File {
                dir: self.sink_dir.clone(),
            },
            SinkKind::Cloudflare => {
                let need = |v: &Option<String>, name: &str| {
                    v.clone().ok_or_else(|| {
                        AdminError::BadRequest(format!("the cloudflare sink needs {name}"))
                    })
                };
                Sink::Cloudflare {
                    api_base: self.cf_api_base.clone(),
                    account_id: need(&self.cf_account_id, "CF_ACCOUNT_ID")?,
                    namespaces: Namespaces::parse(&need(
                        &self.cf_namespace_id,
                        "CF_KV_NAMESPACE_ID",
                    )?)
                    .map_err(AdminError::BadRequest)?,
                    api_token: need(&self.cf_api_token, "CF_API_TOKEN")?,
                }
            }
        })
    }
}

/// The checkout `npx wrangler dev` runs in: where its local KV lives.
fn default_repo_root() -> PathBuf {
    let here = std::env::current_dir().unwrap_or_default();
    here.ancestors()
        .find(|dir| dir.join("wrangler.toml").is_file())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")))
}
