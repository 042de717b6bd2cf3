//! Consent (docs/contracts.md §8): an environment may name the signal — a cookie or a header
//! and the value that means yes — without which the edge identifies nobody. A visitor without
//! it gets no `cleave_uid`, and no exposure or event of theirs is recorded; proxied pages serve
//! each experiment's control (or no assignment, as the setting says).

use crate::problems::Problems;
use crate::snapshot::{AttributeSource, Consent};

/// Whether a request consents: its cookie or header `consent.name` holds exactly
/// `consent.value`. `header` reads a request header, `cookie` a cookie, by name.
pub fn consents(
    consent: &Consent,
    header: impl FnOnce(&str) -> Option<String>,
    cookie: impl FnOnce(&str) -> Option<String>,
) -> bool {
    let given = match consent.source {
        AttributeSource::Header => header(&consent.name),
        AttributeSource::Cookie => cookie(&consent.name),
        AttributeSource::Query => None,
    };
    given.is_some_and(|v| v.trim() == consent.value)
}

/// Checks the setting: a cookie or header name and a value.
pub(crate) fn check_consent(consent: &Consent, problems: &mut Problems) {
    if consent.source == AttributeSource::Query {
        problems.push(
            "consent.source",
            "consent is read from a cookie or a header, not the query",
        );
    }
    if !is_token(&consent.name) {
        problems.push(
            "consent.name",
            format!("{:?} is not a cookie or header name", consent.name),
        );
    }
    if consent.value.trim().is_empty() {
        problems.push("consent.value", "the value that means consent is empty");
    }
}

/// Whether `s` can name a header or a cookie (an RFC 9110 token).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::snapshot::WithoutConsent;
    use crate::Engine;

    fn consent(source: AttributeSource) -> Consent {
        Consent {
            source,
            name: "cookie_consent".into(),
            value: "yes".into(),
            without: WithoutConsent::Control,
        }
    }

    #[test]
    fn only_the_named_signal_with_its_value_consents() {
        let c = consent(AttributeSource::Cookie);
        assert!(consents(
            &c,
            |_| None,
            |n| (n == "cookie_consent").then(|| "yes".into())
        ));
        assert!(!consents(&c, |_| None, |_| Some("no".into())));
        assert!(
            !consents(&c, |_| Some("yes".into()), |_| None),
            "a header is not the cookie"
        );
        let h = consent(AttributeSource::Header);
        assert!(consents(&h, |_| Some(" yes ".into()), |_| None));
        assert!(!consents(&h, |_| None, |_| None));
    }

    #[test]
    fn the_setting_is_checked() {
        let mut problems = Problems::default();
        let bad = Consent {
            name: "a b".into(),
            value: " ".into(),
            ..consent(AttributeSource::Query)
        };
        check_consent(&bad, &mut problems);
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["consent.source", "consent.name", "consent.value"]);
    }

    #[test]
    fn controls_are_the_control_variants_of_running_experiments() {
        let engine = Engine::decode(include_bytes!(
            "../../tests/fixtures/assignment-snapshot.json"
        ))
        .unwrap();
        let controls = engine.controls(None);
        assert!(!controls.is_empty());
        for a in &controls {
            let keys = a.experiment.variants.iter().map(|v| v.key.as_str());
            let control = crate::snapshot::control_position(keys).unwrap();
            assert_eq!(a.variant_index, control, "{}", a.experiment.key);
            assert_eq!(a.experiment.status, crate::snapshot::Status::Running);
        }
    }
}
