//! Where published snapshots go. Every sink stores the immutable body first and the pointer
//! second (the publish code calls them in that order).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cleave_core::snapshot::{binary_key, body_key, pointer_key, Pointer};

/// A configured destination for snapshots.
#[derive(Debug, Clone)]
pub enum Sink {
    /// The local KV of a repo checkout: the store `npx wrangler dev` there reads.
    WranglerLocal {
        root: PathBuf,
        persist_to: Option<PathBuf>,
    },
    /// Workers KV through the Cloudflare REST API.
    Cloudflare {
        api_base: String,
        account_id: String,
        namespaces: Namespaces,
        api_token: String,
    },
    /// A folder: `{dir}/{env}/v{N}.json` (and its sidecar `v{N}.bin`) per version,
    /// `{dir}/{env}.json` = the current one.
    File { dir: PathBuf },
}

impl Sink {
    /// Stores the body of `version` and, when given, its binary sidecar.
    ///
    /// # Errors
    /// A message saying what the destination answered.
    pub async fn put_body(
        &self,
        env: &str,
        version: i64,
        body: &str,
        sidecar: Option<&[u8]>,
    ) -> Result<(), String> {
        let number = u64::try_from(version).unwrap_or(0);
        let mut entries = vec![(body_key(env, number), body.as_bytes())];
        entries.extend(sidecar.map(|bytes| (binary_key(env, number), bytes)));
        match self {
            Self::File { dir } => {
                let folder = dir.join(env);
                tokio::fs::create_dir_all(&folder)
                    .await
                    .map_err(|e| format!("{}: {e}", folder.display()))?;
                if let Some(bytes) = sidecar {
                    write_file(&folder.join(format!("v{version}.bin")), bytes).await?;
                }
                write_file(&folder.join(format!("v{version}.json")), body).await
            }
            // One key at a time: `wrangler kv bulk put --local` stores values as text, which
            // would mangle a sidecar's bytes.
            Self::WranglerLocal { .. } | Self::Cloudflare { .. } => {
                for (key, value) in &entries {
                    self.put_key(env, key, value).await?;
                }
                Ok(())
            }
        }
    }

    /// Points `env` at `pointer.version`. The `file` sink copies that body to `{env}.json`
    /// and keeps the pointer itself (with its signature) in `{env}.pointer.json`.
    ///
    /// # Errors
    /// A message saying what the destination answered.
    pub async fn put_pointer(&self, env: &str, pointer: &Pointer) -> Result<(), String> {
        let pointer_text = serde_json::to_string(pointer).map_err(|e| e.to_string())?;
        match self {
            Self::File { dir } => {
                let version = pointer.version;
                let source = dir.join(env).join(format!("v{version}.json"));
                let body = tokio::fs::read_to_string(&source)
                    .await
                    .map_err(|e| format!("{}: {e}", source.display()))?;
                write_file(&dir.join(format!("{env}.pointer.json")), &pointer_text).await?;
                write_file(&dir.join(format!("{env}.json")), &body).await
            }
            _ => {
                self.put_key(env, &pointer_key(env), pointer_text.as_bytes())
                    .await
            }
        }
    }

    async fn put_key(&self, env: &str, key: &str, value: &[u8]) -> Result<(), String> {
        match self {
            Self::WranglerLocal { root, persist_to } => {
                wrangler_put(root, persist_to.as_deref(), key, value).await
            }
            Self::Cloudflare {
                api_base,
                account_id,
                namespaces,
                api_token,
            } => {
                let namespace_id = namespaces.for_environment(env)?;
                let url = format!(
                    "{}/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{}",
                    api_base.trim_end_matches('/'),
                    encode_key(key)
                );
                let response = reqwest::Client::new()
                    .put(&url)
                    .bearer_auth(api_token)
                    .header("content-type", "application/octet-stream")
                    .body(value.to_vec())
                    .send()
                    .await
                    .map_err(|e| format!("Cloudflare KV write of {key} failed: {e}"))?;
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let success = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("success").and_then(serde_json::Value::as_bool))
                    .unwrap_or(false);
                if status.is_success() && success {
                    Ok(())
                } else {
                    Err(format!(
                        "Cloudflare KV write of {key} answered {status}: {text}"
                    ))
                }
            }
            Self::File { .. } => Err("file sink stores bodies and pointers only".to_owned()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::WranglerLocal { root, .. } => format!("wrangler-local ({})", root.display()),
            Self::Cloudflare { namespaces, .. } => format!("cloudflare ({namespaces})"),
            Self::File { dir } => format!("file ({})", dir.display()),
        }
    }
}

/// The Workers KV namespace each cleave environment publishes to.
pub type Namespaces = PerEnvironment;

/// A setting given once for every environment or per environment (`staging=<v>,production=<v>`,
/// with `*=<v>` for the rest): KV namespaces, so staging snapshots can never land in
/// production's namespace, and the workers pointers are pushed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerEnvironment {
    by_environment: BTreeMap<String, String>,
    fallback: Option<String>,
    /// The variable it was read from and what it names, for messages.
    var: &'static str,
    what: &'static str,
}

impl PerEnvironment {
    /// One KV namespace for every environment.
    pub fn single(id: impl Into<String>) -> Self {
        Self {
            by_environment: BTreeMap::new(),
            fallback: Some(id.into()),
            var: "CF_KV_NAMESPACE_ID",
            what: "KV namespace",
        }
    }

    /// Parses `CF_KV_NAMESPACE_ID`: an id, or `env=id` pairs separated by commas.
    ///
    /// # Errors
    /// A message naming the malformed entry.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_var(text, "CF_KV_NAMESPACE_ID", "KV namespace")
    }

    /// Parses variable `var` naming `what`: one value, or `env=value` pairs separated by
    /// commas.
    ///
    /// # Errors
    /// A message naming the malformed entry.
    pub fn parse_var(text: &str, var: &'static str, what: &'static str) -> Result<Self, String> {
        let text = text.trim();
        let mut out = Self {
            by_environment: BTreeMap::new(),
            fallback: None,
            var,
            what,
        };
        // A URL's `=` (in a query) is not a pair: only `name=` before any `/` or `:` is.
        let is_pairs = text.split(',').any(|entry| {
            entry
                .split_once('=')
                .is_some_and(|(e, _)| !e.contains(['/', ':']))
        });
        if !is_pairs {
            if text.is_empty() {
                return Err(format!("{var} is empty"));
            }
            out.fallback = Some(text.to_owned());
            return Ok(out);
        }
        for (i, entry) in text.split(',').map(str::trim).enumerate() {
            let (env, value) = entry
                .split_once('=')
                .map(|(e, v)| (e.trim(), v.trim()))
                .filter(|(e, v)| !e.is_empty() && !v.is_empty())
                .ok_or_else(|| format!("{var} entry {} is not environment=value", i + 1))?;
            if env == "*" {
                out.fallback = Some(value.to_owned());
            } else {
                out.by_environment.insert(env.to_owned(), value.to_owned());
            }
        }
        Ok(out)
    }

    /// The value for `env`.
    ///
    /// # Errors
    /// When none is configured for `env`.
    pub fn for_environment(&self, env: &str) -> Result<&str, String> {
        self.by_environment
            .get(env)
            .or(self.fallback.as_ref())
            .map(String::as_str)
            .ok_or_else(|| {
                let known: Vec<&str> = self.by_environment.keys().map(String::as_str).collect();
                format!(
                    "no {} configured for environment {env:?} ({} names {})",
                    self.what,
                    self.var,
                    known.join(", ")
                )
            })
    }
}

impl std::fmt::Display for PerEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = self
            .by_environment
            .iter()
            .map(|(env, value)| format!("{env} -> {value}"))
            .collect();
        if let Some(value) = &self.fallback {
            parts.push(value.clone());
        }
        f.write_str(&parts.join(", "))
    }
}

/// Percent-encodes a KV key for a URL path segment.
fn encode_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn write_file(path: &Path, body: impl AsRef<[u8]>) -> Result<(), String> {
    // Write then rename, so a reader never sees half a file.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    tokio::fs::write(&tmp, body)
        .await
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `wrangler kv key put --local --binding SNAPSHOTS` from the repo root.
async fn wrangler_put(
    root: &Path,
    persist_to: Option<&Path>,
    key: &str,
    value: &[u8],
) -> Result<(), String> {
    let args = [
        "kv",
        "key",
        "put",
        "--local",
        "--binding",
        "SNAPSHOTS",
        key,
        "--path",
    ];
    run_wrangler(root, persist_to, &args, value).await
}

/// Runs the checkout's wrangler with `args` followed by a temporary file holding `file`.
async fn run_wrangler(
    root: &Path,
    persist_to: Option<&Path>,
    args: &[&str],
    file: &[u8],
) -> Result<(), String> {
    let tmp = std::env::temp_dir().join(format!(
        "cleave-kv-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    tokio::fs::write(&tmp, file)
        .await
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    let wrangler = root.join("node_modules/wrangler/bin/wrangler.js");
    let mut command = tokio::process::Command::new("node");
    command
        .arg(&wrangler)
        .args(args)
        .arg(&tmp)
        .current_dir(root)
        .env("WRANGLER_SEND_METRICS", "false");
    if let Some(dir) = persist_to {
        command.arg("--persist-to").arg(dir);
    }
    let output = command.output().await;
    let _ = tokio::fs::remove_file(&tmp).await;
    let output = output.map_err(|e| format!("cannot run {}: {e}", wrangler.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "wrangler {} failed ({}): {}",
            args.iter()
                .take_while(|a| !a.starts_with("--"))
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
