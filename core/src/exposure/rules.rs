//! Which assignments are exposures, and whose units a caller may record them for.
//!
//! An assignment is what the engine computes; an exposure is the record that the unit saw
//! it. A call that only looks must not record one, or units that never saw a variant dilute
//! the effect. And a caller may only speak for its own units, or anyone could write records
//! under a victim's id. Both rules live here so the decide API, confirmations, proxy mode and
//! events cannot drift apart.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::Exposure;
use crate::keys::is_valid_key;

/// How the edge learned that a unit saw a variant; results count units by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A decide call that named the experiment (or said `expose=all`).
    Api,
    /// `POST /_cleave/v1/exposures`: a client confirming what it rendered.
    Confirmed,
    /// A proxied page whose origin listed the experiment in `cleave-exposed`.
    ProxyDeclared,
    /// A proxied page that declared nothing (every assignment counts), or a route-scoped
    /// experiment whose route the page matched.
    ProxyImplicit,
}

impl Source {
    pub const ALL: [Self; 4] = [
        Self::Api,
        Self::Confirmed,
        Self::ProxyDeclared,
        Self::ProxyImplicit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Confirmed => "confirmed",
            Self::ProxyDeclared => "proxy_declared",
            Self::ProxyImplicit => "proxy_implicit",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// `expose=` on a decide call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Expose {
    /// Not given: a call naming experiments records them, a bulk call records nothing.
    #[default]
    Named,
    /// `expose=all`: every assignment is an exposure, bulk or not.
    All,
    /// `expose=none`: nothing is recorded.
    Nothing,
}

impl Expose {
    /// Parses the parameter's value.
    ///
    /// # Errors
    /// A message naming the accepted values.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "all" => Ok(Self::All),
            "none" => Ok(Self::Nothing),
            other => Err(format!("expose {other:?} must be \"all\" or \"none\"")),
        }
    }

    /// Whether a decide call's assignments are exposures: `named` is whether the call
    /// named the experiments it asks about.
    pub fn records(self, named: bool) -> bool {
        match self {
            Self::Named => named,
            Self::All => true,
            Self::Nothing => false,
        }
    }
}

/// Whose exposures and events a caller may record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding<'a> {
    /// A trusted server (`CLEAVE_SERVER_TOKEN`), or an environment whose settings allow
    /// caller-named units (`anonymousExposures: "any"`).
    Any,
    /// Only these `(unit type, id)` pairs: the caller's own `cleave_uid` as its `user` unit,
    /// and units from verified identity sources. Empty for a caller with neither.
    Units(&'a [(String, String)]),
}

impl Binding<'_> {
    /// Whether the caller may record an exposure for unit `id` of `unit_type`.
    pub fn allows(&self, unit_type: &str, id: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Units(units) => units.iter().any(|(t, u)| t == unit_type && u == id),
        }
    }

    /// Whether the caller may record an event for `id`. Events name a unit id without its
    /// type, so any bound unit with that id will do.
    pub fn allows_event(&self, id: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Units(units) => units.iter().any(|(_, u)| u == id),
        }
    }
}

/// The experiment keys of a `cleave-exposed` response header, an RFC 8941 list of tokens or
/// strings (`checkout-cta, "hero";seen`). Parameters are ignored, and so are members that are
/// not experiment keys (inner lists, numbers, anything malformed): the origin is trusted, and
/// a member it got wrong only fails to count.
pub fn parse_exposed_header(value: &str) -> BTreeSet<String> {
    crate::order::set_of(value.split(',').filter_map(|member| {
        let item = member.split(';').next().unwrap_or("").trim();
        let key = match item.strip_prefix('"') {
            Some(rest) => rest.strip_suffix('"')?,
            None => item,
        };
        is_valid_key(key).then(|| key.to_owned())
    }))
}

/// Proxy mode: the exposures of a page, given what its origin declared. Without a
/// `cleave-exposed` header every assignment sent to the origin counts (as
/// [`Source::ProxyImplicit`]); with one, the experiments it lists count as
/// [`Source::ProxyDeclared`], route-scoped experiments (whose route the page matched) still
/// count as implicit, and the rest were assigned but not seen.
pub fn declared_by_origin(
    mut exposures: Vec<Exposure>,
    header: Option<&str>,
    route_scoped: &BTreeSet<String>,
) -> Vec<Exposure> {
    let Some(header) = header else {
        return exposures;
    };
    let declared = parse_exposed_header(header);
    exposures.retain_mut(|e| {
        if declared.contains(&e.experiment) {
            e.source = Some(Source::ProxyDeclared);
            true
        } else {
            e.source = Some(Source::ProxyImplicit);
            route_scoped.contains(&e.experiment)
        }
    });
    exposures
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::exposure::SliceAttributes;

    #[test]
    fn a_bulk_call_records_nothing_unless_it_says_all() {
        assert!(!Expose::Named.records(false));
        assert!(Expose::Named.records(true));
        assert!(Expose::All.records(false));
        assert!(!Expose::Nothing.records(true));
        assert_eq!(Expose::parse("all"), Ok(Expose::All));
        assert_eq!(Expose::parse("none"), Ok(Expose::Nothing));
        assert!(Expose::parse("some")
            .unwrap_err()
            .contains("\"all\" or \"none\""));
    }

    #[test]
    fn bound_callers_speak_only_for_their_own_units() {
        let own = [("user", "u1"), ("account", "a7")].map(|(t, u)| (t.to_owned(), u.to_owned()));
        let bound = Binding::Units(&own);
        assert!(bound.allows("user", "u1"));
        assert!(!bound.allows("user", "a7"), "the type must match too");
        assert!(!bound.allows("user", "victim"));
        assert!(bound.allows_event("a7"));
        assert!(!bound.allows_event("victim"));
        assert!(!Binding::Units(&[]).allows_event("u1"));
        assert!(Binding::Any.allows("user", "anyone") && Binding::Any.allows_event("anyone"));
    }

    #[test]
    fn the_exposed_header_reads_tokens_and_strings_and_skips_the_rest() {
        let keys = parse_exposed_header(r#"checkout-cta, "hero";seen=?1,  (a b), 42, Bad!, ,x"#);
        let want: BTreeSet<String> = ["checkout-cta", "hero", "x"].map(str::to_owned).into();
        assert_eq!(keys, want);
        assert!(parse_exposed_header("").is_empty());
    }

    fn exposure(experiment: &str) -> Exposure {
        Exposure {
            id: experiment.to_owned(),
            experiment: experiment.to_owned(),
            variant: "on".to_owned(),
            unit_type: "user".to_owned(),
            unit: "u1".to_owned(),
            salt: experiment.to_owned(),
            day: "2026-12-02".to_owned(),
            at_ms: 0,
            excluded: None,
            source: Some(Source::ProxyImplicit),
            slice: SliceAttributes::default(),
        }
    }

    #[test]
    fn an_origin_declaration_narrows_and_route_scoped_experiments_stay() {
        let all = vec![exposure("cta"), exposure("hero"), exposure("pricing-page")];
        let scoped: BTreeSet<String> = ["pricing-page".to_owned()].into();
        assert_eq!(declared_by_origin(all.clone(), None, &scoped), all);
        let kept = declared_by_origin(all, Some("cta, unknown"), &scoped);
        let seen: Vec<_> = kept
            .iter()
            .map(|e| (e.experiment.as_str(), e.source))
            .collect();
        assert_eq!(
            seen,
            [
                ("cta", Some(Source::ProxyDeclared)),
                ("pricing-page", Some(Source::ProxyImplicit))
            ]
        );
        let none = declared_by_origin(vec![exposure("cta")], Some(""), &BTreeSet::new());
        assert!(
            none.is_empty(),
            "an empty declaration means nothing was seen"
        );
    }
}
