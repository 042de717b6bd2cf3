//! Sticky assignments: a visitor bucketed on an experiment's fallback unit (say an anonymous
//! cookie id) keeps that variant once the primary unit (a user id) appears, so logging in
//! never flips what they see. An experiment opts in by declaring `fallback_unit`.
//!
//! The record lives with the visitor, not at the edge: a signed token the caller stores next
//! to the fallback id and sends back. Each entry is bound to the experiment's salt and the
//! fallback id by a tag, so a new phase (a rotated salt) or another visitor's id ignores it.
//!
//! Token: `seal` with context `cleave-sticky:v1\n`, body
//! `"<exp>=<variant>@<tag>,..."`, tag = hex of the first 6 bytes of
//! `SHA-256("sticky:" ++ salt ++ ":" ++ fallback id)`.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};
use thiserror::Error;

use crate::decision::{Assignment, Units};
use crate::keys::is_valid_key;
use crate::seal::{open, seal, SealError};

const CONTEXT: &[u8] = b"cleave-sticky:v1\n";

/// At most this many experiments are remembered (about 2 KB of cookie at the longest keys).
pub const MAX_ENTRIES: usize = 32;

/// Why a sticky token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StickyError {
    #[error("sticky assignments are disabled: CLEAVE_SIGNING_KEY is not set")]
    NoKey,
    #[error("sticky token is malformed")]
    Malformed,
    #[error("sticky token signature does not match")]
    BadSignature,
}

/// A visitor's remembered assignments, by experiment key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sticky {
    entries: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    variant: String,
    tag: String,
}

impl Sticky {
    /// Reads a token.
    ///
    /// # Errors
    /// A missing key, a bad signature or a body that does not parse.
    pub fn open(key: &[u8], token: &str) -> Result<Self, StickyError> {
        let body = open(key, CONTEXT, token)?;
        let entries =
            crate::order::try_map_of(body.split(',').filter(|entry| !entry.is_empty()).map(
                |entry| {
                    let (exp, rest) = entry.split_once('=').ok_or(StickyError::Malformed)?;
                    let (variant, tag) = rest.split_once('@').ok_or(StickyError::Malformed)?;
                    let well_formed = is_valid_key(exp)
                        && is_valid_key(variant)
                        && tag.len() == 12
                        && tag.bytes().all(|b| b.is_ascii_hexdigit());
                    let entry = Entry {
                        variant: variant.to_owned(),
                        tag: tag.to_owned(),
                    };
                    well_formed
                        .then(|| (exp.to_owned(), entry))
                        .ok_or(StickyError::Malformed)
                },
            ))?;
        Ok(Self { entries })
    }

    /// Signs the record, or `None` when it is empty.
    ///
    /// # Errors
    /// No key configured.
    pub fn seal(&self, key: &[u8]) -> Result<Option<String>, StickyError> {
        if self.entries.is_empty() {
            return Ok(None);
        }
        let body: Vec<String> = self
            .entries
            .iter()
            .map(|(exp, e)| format!("{exp}={}@{}", e.variant, e.tag))
            .collect();
        Ok(Some(seal(key, CONTEXT, &body.join(","))?))
    }

    /// The variant remembered for `experiment` when the entry belongs to this phase (`salt`)
    /// and this fallback id.
    pub fn variant(&self, experiment: &str, salt: &str, fallback_id: &str) -> Option<&str> {
        self.entries
            .get(experiment)
            .filter(|e| e.tag == tag(salt, fallback_id))
            .map(|e| e.variant.as_str())
    }

    /// Records this request's assignments made on a fallback unit and forgets experiments the
    /// snapshot no longer has (`in_snapshot` says which it has). Entries for experiments this
    /// request did not decide (filtered out, paused) are kept.
    pub fn record(
        &mut self,
        in_snapshot: impl Fn(&str) -> bool,
        units: &Units,
        assignments: &[Assignment<'_>],
    ) {
        self.entries.retain(|exp, _| in_snapshot(exp));
        for a in assignments.iter().filter(|a| a.by_fallback) {
            let exp = a.experiment;
            let Some(id) = exp.fallback_unit.as_ref().and_then(|u| units.get(u)) else {
                continue;
            };
            let entry = Entry {
                variant: a.variant.key.clone(),
                tag: tag(exp.effective_salt(), id),
            };
            self.entries.insert(exp.key.clone(), entry);
        }
        // Over the cap, older experiments this request did not touch go first.
        let touched = |exp: &str| {
            assignments
                .iter()
                .any(|a| a.by_fallback && a.experiment.key == exp)
        };
        while self.entries.len() > MAX_ENTRIES {
            let victim = self
                .entries
                .keys()
                .find(|k| !touched(k))
                .or_else(|| self.entries.keys().next())
                .cloned();
            match victim {
                Some(k) => self.entries.remove(&k),
                None => break,
            };
        }
    }

    /// Number of remembered experiments.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Binds an entry to a phase and a fallback id.
fn tag(salt: &str, fallback_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"sticky:");
    hasher.update(salt.as_bytes());
    hasher.update(b":");
    hasher.update(fallback_id.as_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    hex::encode(digest.get(..6).unwrap_or_default())
}

impl From<SealError> for StickyError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::NoKey => Self::NoKey,
            SealError::Malformed => Self::Malformed,
            SealError::BadSignature => Self::BadSignature,
        }
    }
}
