//! Who may do what over REST. Tokens carry a role: `viewer` reads, `editor` also changes
//! definitions (experiments, variants, allocations, audiences, settings, metrics),
//! `publisher` also publishes, rolls back and changes experiment status (which publishes).
//! `ingest` is the edge's token: it may only deliver exposures and events (`POST /ingest`),
//! and read nothing.
//!
//! `CLEAVE_ADMIN_TOKENS` lists `role:name:token` entries, comma-separated; the name is what
//! the audit log records. With it set, every request needs a token, reads included. The older
//! single `CLEAVE_ADMIN_API_TOKEN` is a publisher token named `api-token`; alone it leaves
//! reads open, as before.

use axum::http::HeaderMap;

use crate::error::AdminError;

/// What a request needs, in increasing order of power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Delivers exposures and events; below every reading role.
    Ingest,
    Viewer,
    Editor,
    Publisher,
}

impl Role {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "ingest" => Some(Self::Ingest),
            "viewer" => Some(Self::Viewer),
            "editor" => Some(Self::Editor),
            "publisher" => Some(Self::Publisher),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Publisher => "publisher",
        }
    }
}

#[derive(Clone)]
struct Credential {
    role: Role,
    name: String,
    token: String,
}

/// The configured tokens. `Debug` never prints a token.
#[derive(Clone, Default)]
pub struct Access {
    credentials: Vec<Credential>,
    /// Reads need no token (only the legacy single token is configured, or none).
    reads_open: bool,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let roles: Vec<String> = self
            .credentials
            .iter()
            .map(|c| format!("{}:{}", c.role.name(), c.name))
            .collect();
        f.debug_struct("Access")
            .field("credentials", &roles)
            .field("reads_open", &self.reads_open)
            .finish()
    }
}

impl Access {
    /// From `CLEAVE_ADMIN_TOKENS` and the legacy `CLEAVE_ADMIN_API_TOKEN`.
    ///
    /// # Errors
    /// An entry that is not `role:name:token` with a known role and a non-empty name and
    /// token; the message names the entry by position, never by its token.
    pub fn from_config(tokens: Option<&str>, legacy: Option<&str>) -> Result<Self, String> {
        let mut credentials = Vec::new();
        for (i, entry) in tokens.unwrap_or("").split(',').enumerate() {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let mut parts = entry.splitn(3, ':');
            let (role, name, token) = (parts.next(), parts.next(), parts.next());
            let role = role.and_then(Role::parse);
            match (role, name, token) {
                (Some(role), Some(name), Some(token)) if !name.is_empty() && !token.is_empty() => {
                    credentials.push(Credential {
                        role,
                        name: name.to_owned(),
                        token: token.to_owned(),
                    });
                }
                _ => {
                    return Err(format!(
                        "CLEAVE_ADMIN_TOKENS entry {}: expected role:name:token with role \
                         ingest, viewer, editor or publisher",
                        i + 1
                    ))
                }
            }
        }
        let reads_open = credentials.is_empty();
        if let Some(token) = legacy.filter(|t| !t.is_empty()) {
            credentials.push(Credential {
                role: Role::Publisher,
                name: "api-token".to_owned(),
                token: token.to_owned(),
            });
        }
        Ok(Self {
            credentials,
            reads_open,
        })
    }

    /// Only the legacy single token (tests and the simplest deployments).
    pub fn single(token: Option<&str>) -> Self {
        Self::from_config(None, token).unwrap_or_default()
    }

    /// Whether no token can act at all.
    pub fn is_empty(&self) -> bool {
        self.credentials.is_empty()
    }

    /// Checks the bearer token against `needed` and returns the actor to audit: the token's
    /// name, with the caller's `X-Cleave-Actor` (a person behind a shared token) in front.
    ///
    /// # Errors
    /// 401 for a missing or unknown token (or a read when reads need none: never), 403 for a
    /// token whose role is too weak.
    pub fn check(&self, headers: &HeaderMap, needed: Role) -> Result<String, AdminError> {
        let Some(credential) = self.credential(headers, needed == Role::Viewer)? else {
            return Ok(String::new());
        };
        if credential.role < needed {
            return Err(AdminError::Forbidden(format!(
                "token {:?} is a {} token; this needs {}",
                credential.name,
                credential.role.name(),
                needed.name()
            )));
        }
        Ok(actor(headers, credential))
    }

    /// Who the request's token is and what it may do, so the dashboard can show it and
    /// disable the actions it would be refused.
    ///
    /// # Errors
    /// As [`Access::check`] for a read.
    pub fn session(&self, headers: &HeaderMap) -> Result<Session, AdminError> {
        self.check(headers, Role::Viewer)?;
        let credential = self.credential(headers, true)?;
        let role = credential.map_or(Role::Viewer, |c| c.role);
        Ok(Session {
            actor: credential.map(|c| actor(headers, c)),
            role: credential.map(|c| c.role.name()),
            can_edit: credential.is_some() && role >= Role::Editor,
            can_publish: credential.is_some() && role >= Role::Publisher,
            tokens_required: !self.reads_open,
        })
    }

    /// Checks a delivery from the edge: an `ingest` or `publisher` token (not viewers or
    /// editors, whose tokens people hold, so they cannot fabricate results).
    ///
    /// # Errors
    /// 401 for a missing or unknown token, 403 for any other role.
    pub fn check_ingest(&self, headers: &HeaderMap) -> Result<String, AdminError> {
        let credential = self
            .credential(headers, false)?
            .ok_or(AdminError::Unauthorized)?;
        if !matches!(credential.role, Role::Ingest | Role::Publisher) {
            return Err(AdminError::Forbidden(format!(
                "token {:?} is a {} token; delivering exposures and events needs an ingest token",
                credential.name,
                credential.role.name()
            )));
        }
        Ok(actor(headers, credential))
    }

    /// The credential the request presents; `None` for a tokenless read where reads are open.
    fn credential(
        &self,
        headers: &HeaderMap,
        read: bool,
    ) -> Result<Option<&Credential>, AdminError> {
        let presented = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(presented) = presented else {
            return if read && self.reads_open {
                Ok(None)
            } else {
                Err(AdminError::Unauthorized)
            };
        };
        self.credentials
            .iter()
            .find(|c| cleave_core::secrets_equal(c.token.as_bytes(), presented.as_bytes()))
            .map(Some)
            .ok_or(AdminError::Unauthorized)
    }
}

/// The caller as [`Access::session`] describes it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// What the audit log will record; `None` for a tokenless reader.
    pub actor: Option<String>,
    pub role: Option<&'static str>,
    pub can_edit: bool,
    pub can_publish: bool,
    /// Whether reads need a token too.
    pub tokens_required: bool,
}

/// The actor to audit: the token's name, with the caller's `X-Cleave-Actor` (a person behind
/// a shared token) in front.
fn actor(headers: &HeaderMap, credential: &Credential) -> String {
    let named = headers
        .get("x-cleave-actor")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200);
    match named {
        Some(person) if credential.name == "api-token" => person.to_owned(),
        Some(person) => format!("{person} ({})", credential.name),
        None => credential.name.clone(),
    }
}
