//! Targeting operators (docs/contracts.md §4): their wire names and the value each compares
//! with. The admin serves this list to the dashboard, so neither keeps a copy.

use serde::{Deserialize, Serialize};

/// Every operator of docs/contracts.md §4. [`crate::Engine`] refuses the ones it cannot evaluate yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Neq,
    In,
    NotIn,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    Regex,
    Gt,
    Gte,
    Lt,
    Lte,
    SemverEq,
    SemverGt,
    SemverGte,
    SemverLt,
    SemverLte,
    Before,
    After,
    Exists,
    NotExists,
    /// An operator this build does not know; kept so validation can name it.
    Unknown(String),
}

/// Wire names, in one table for both directions.
const OPERATOR_NAMES: [(&str, Operator); 22] = [
    ("eq", Operator::Eq),
    ("neq", Operator::Neq),
    ("in", Operator::In),
    ("not_in", Operator::NotIn),
    ("contains", Operator::Contains),
    ("not_contains", Operator::NotContains),
    ("starts_with", Operator::StartsWith),
    ("ends_with", Operator::EndsWith),
    ("regex", Operator::Regex),
    ("gt", Operator::Gt),
    ("gte", Operator::Gte),
    ("lt", Operator::Lt),
    ("lte", Operator::Lte),
    ("semver_eq", Operator::SemverEq),
    ("semver_gt", Operator::SemverGt),
    ("semver_gte", Operator::SemverGte),
    ("semver_lt", Operator::SemverLt),
    ("semver_lte", Operator::SemverLte),
    ("before", Operator::Before),
    ("after", Operator::After),
    ("exists", Operator::Exists),
    ("not_exists", Operator::NotExists),
];

impl Operator {
    /// The operator's wire name.
    pub fn name(&self) -> &str {
        match self {
            Self::Unknown(name) => name,
            known => OPERATOR_NAMES
                .iter()
                .find(|(_, op)| op == known)
                .map_or("", |(name, _)| name),
        }
    }

    /// Every operator this build evaluates, in the contract's order.
    pub fn known() -> impl Iterator<Item = &'static Operator> {
        OPERATOR_NAMES.iter().map(|(_, op)| op)
    }

    /// What the operator compares the attribute with: the shape its `value` must have.
    /// `None` for an unknown operator.
    pub fn operand(&self) -> Option<Operand> {
        Some(match self {
            Self::Eq
            | Self::Neq
            | Self::Contains
            | Self::NotContains
            | Self::StartsWith
            | Self::EndsWith => Operand::Text,
            Self::In | Self::NotIn => Operand::List,
            Self::Regex => Operand::Pattern,
            Self::Gt | Self::Gte | Self::Lt | Self::Lte => Operand::Number,
            Self::SemverEq
            | Self::SemverGt
            | Self::SemverGte
            | Self::SemverLt
            | Self::SemverLte => Operand::Version,
            Self::Before | Self::After => Operand::Time,
            Self::Exists | Self::NotExists => Operand::Nothing,
            Self::Unknown(_) => return None,
        })
    }

    /// The operator called `name`; unknown names are kept as [`Operator::Unknown`].
    pub fn from_name(name: &str) -> Self {
        OPERATOR_NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| Self::Unknown(name.to_owned()), |(_, op)| op.clone())
    }
}

impl Serialize for Operator {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Operator {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Operator;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an operator name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Operator, E> {
                Ok(Operator::from_name(name))
            }
        }
        deserializer.deserialize_str(Name)
    }
}

/// The shape of a condition's `value` for an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operand {
    /// A string (numbers and booleans compare as their text).
    Text,
    /// A list of strings.
    List,
    /// A regular expression (regex-lite syntax).
    Pattern,
    /// A number.
    Number,
    /// A semantic version.
    Version,
    /// An RFC 3339 timestamp.
    Time,
    /// No value.
    Nothing,
}
