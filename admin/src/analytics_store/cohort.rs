//! What the analytics stores are asked about: the units one reading counts, the dimensions
//! they can be sliced by, and the counts every store answers alike.

use serde::Serialize;
use sqlx::FromRow;
use uuid::Uuid;

/// An edge dimension exposures record and results can be sliced by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Country,
    Device,
    Browser,
}

impl Dimension {
    pub const ALL: [Self; 3] = [Self::Country, Self::Device, Self::Browser];

    /// The dimension named `name` (`country`, `device` or `browser`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// Its column in `exposures` (also its name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Country => "country",
            Self::Device => "device",
            Self::Browser => "browser",
        }
    }
}

/// The units one reading counts: those of an experiment phase (or the holdout's), seen in
/// exactly one variant and not excluded; with a slice, only those whose first exposure was in
/// it (`unknown` where the edge did not say).
#[derive(Debug, Clone, Copy)]
pub struct Cohort<'a> {
    pub environment: Uuid,
    pub experiment: &'a str,
    pub salt: &'a str,
    /// The dimension units are labelled by (`units.slice`), and the one value kept.
    pub slice: Option<(Dimension, Option<&'a str>)>,
}

impl<'a> Cohort<'a> {
    pub fn phase(environment: Uuid, experiment: &'a str, salt: &'a str) -> Self {
        Self {
            environment,
            experiment,
            salt,
            slice: None,
        }
    }

    /// The one slice value kept, if any.
    pub fn value(&self) -> Option<&'a str> {
        self.slice.and_then(|(_, v)| v)
    }
}

/// Units and exposures of one variant, counting units exposed to that variant only.
#[derive(Debug, Clone, FromRow)]
pub struct VariantCount {
    pub variant: String,
    pub units: i64,
    pub exposures: i64,
}

/// Units per slice and variant of a cohort labelled by a dimension.
#[derive(Debug, Clone, FromRow)]
pub struct SliceCount {
    pub slice: String,
    pub variant: String,
    pub units: i64,
}
