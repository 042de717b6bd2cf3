//! Exposures: the record that a unit was served a variant, the raw material of results.
//!
//! Each has a deterministic id over (environment, experiment, salt, variant, unit type, unit,
//! UTC day), so the many requests one visitor makes in a day, and every redelivery of the
//! same record, collapse into one row where they are stored. The salt marks the phase: a
//! re-randomised experiment gets a new salt, and analysis never mixes the two.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::decision::Assignment;
use crate::engine::{unit_for, Subject};

mod holdout;
mod rules;

pub use holdout::{holdout_exposure, HELD_OUT, HOLDOUT_EXPERIMENT, REST};
pub use rules::{declared_by_origin, parse_exposed_header, Binding, Expose, Source};

/// Why an exposure is kept out of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Excluded {
    /// A force token chose the variant.
    Forced,
    /// The unit is on the variant's allow-list.
    AllowListed,
    /// The request came from a crawler.
    Bot,
}

impl Excluded {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forced => "forced",
            Self::AllowListed => "allow_listed",
            Self::Bot => "bot",
        }
    }
}

/// One unit served one variant, as the edge reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exposure {
    /// [`exposure_id`] of the fields below and the batch's environment.
    pub id: String,
    pub experiment: String,
    pub variant: String,
    pub unit_type: String,
    pub unit: String,
    /// The experiment's effective salt (its phase).
    pub salt: String,
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// When the edge served it, epoch milliseconds.
    pub at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded: Option<Excluded>,
    /// How the edge learned the unit saw it; absent in records from older workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Where and on what it was served, for results by slice: the edge's `cf.country`,
    /// `ua.device` and `ua.browser`; absent when the edge did not know (local dev has no
    /// country) and in records from older workers.
    #[serde(default, skip_serializing_if = "SliceAttributes::is_empty")]
    pub slice: SliceAttributes,
}

/// The edge dimensions results can be sliced by.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceAttributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
}

/// Longest slice value accepted, in bytes.
pub const MAX_SLICE_BYTES: usize = 32;

impl SliceAttributes {
    pub fn is_empty(&self) -> bool {
        self.country.is_none() && self.device.is_none() && self.browser.is_none()
    }

    /// The request's slice, from the edge-derived attributes (a request cannot set these
    /// namespaces itself).
    pub fn of(attributes: &crate::targeting::Attributes) -> Self {
        let get = |name: &str| {
            attributes
                .get(name)
                .filter(|v| !v.is_empty() && v.len() <= MAX_SLICE_BYTES)
                .cloned()
        };
        Self {
            country: get("cf.country"),
            device: get("ua.device"),
            browser: get("ua.browser"),
        }
    }

    /// Why a delivered slice is refused, naming the field.
    pub fn problem(&self) -> Option<String> {
        [
            ("country", &self.country),
            ("device", &self.device),
            ("browser", &self.browser),
        ]
        .into_iter()
        .find_map(|(field, value)| {
            let v = value.as_deref()?;
            let bad = v.is_empty()
                || v.len() > MAX_SLICE_BYTES
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b' '));
            bad.then(|| {
                format!("{field}: must be 1 to {MAX_SLICE_BYTES} letters, digits, spaces or -_.")
            })
        })
    }
}

/// The deterministic id: the first 16 bytes of SHA-256 over the length-prefixed fields, hex.
/// Length prefixes keep `("ab", "c")` and `("a", "bc")` apart whatever the ids contain.
pub fn exposure_id(
    environment: &str,
    experiment: &str,
    salt: &str,
    variant: &str,
    unit_type: &str,
    unit: &str,
    day: &str,
) -> String {
    let mut digest = Sha256::new();
    for field in [environment, experiment, salt, variant, unit_type, unit, day] {
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        digest.update(len.to_le_bytes());
        digest.update(field.as_bytes());
    }
    let full = digest.finalize();
    hex::encode(full.get(..16).unwrap_or_default())
}

/// The UTC day of `ms`, `YYYY-MM-DD`.
pub fn utc_day(ms: i64) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    let date = at.date();
    Some(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

/// The exposures of one decision, from `source`: one per assignment whose unit `binding`
/// lets the caller record, marked when a force token, an allow-list or a crawler decided it.
/// Which assignments count as seen is the caller's to choose first ([`Expose`],
/// [`declared_by_origin`]): this only turns them into records.
pub fn exposures_of(
    environment: &str,
    subject: &Subject<'_>,
    assignments: &[Assignment<'_>],
    source: Source,
    binding: &Binding<'_>,
) -> Vec<Exposure> {
    let Some(day) = utc_day(subject.now_ms) else {
        return Vec::new();
    };
    let slice = SliceAttributes::of(subject.attributes);
    assignments
        .iter()
        .filter_map(|a| {
            let e = a.experiment;
            // The id the experiment hashed: its own unit type, else its fallback.
            let (unit_type, unit) = unit_for(&e.unit, e.fallback_unit.as_deref(), subject.units)?;
            if !binding.allows(unit_type, unit) {
                return None;
            }
            let excluded = if subject.forced.is_some_and(|f| f.contains_key(&e.key)) {
                Some(Excluded::Forced)
            } else if a.variant.allow.iter().any(|id| id == unit) {
                Some(Excluded::AllowListed)
            } else if subject.bot {
                Some(Excluded::Bot)
            } else {
                None
            };
            let salt = e.effective_salt();
            let variant = a.variant.key.as_str();
            Some(Exposure {
                id: exposure_id(environment, &e.key, salt, variant, unit_type, unit, &day),
                experiment: e.key.clone(),
                variant: variant.to_owned(),
                unit_type: unit_type.to_owned(),
                unit: unit.to_owned(),
                salt: salt.to_owned(),
                day: day.clone(),
                at_ms: subject.now_ms,
                excluded,
                source: Some(source),
                slice: slice.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
