//! What proxy mode decides for one request: the assignments of the experiments that apply to
//! its route, and what their variants ask of the request (redirect, origin, rewrite).

use cleave_core::exposure::Source;
use cleave_core::flags::FlagOutcome;
use cleave_core::headers::{assignments_header, flags_header, units_header};
use cleave_core::routing::{redirect_location, rewrite_path, RequestRoute, Routing};
use cleave_core::snapshot::WithoutConsent;
use cleave_core::sticky::Sticky;
use cleave_core::{Attributes, Subject, Units};
use worker::web_sys::Request;

use crate::config::Config;
use crate::decision::{self, Ask, Caller, Exposures, Mode};
use crate::identity::{cookie_value, sticky_set_cookie, FORCE_COOKIE, STICKY_COOKIE};
use crate::identity_sources;
use crate::request_context::{enrich, verify_force};
use crate::request_url::RequestUrl;
use crate::snapshot_store::Served;

/// The proxy's decision, owned so the snapshot's borrow ends here.
#[derive(Debug, Default)]
pub struct Decision {
    /// `cleave-snapshot`: the version, or `none`.
    pub snapshot: String,
    /// `cleave-assignments`, absent when enrolled in nothing.
    pub assignments: Option<String>,
    /// `cleave-flags`, absent when no flag value travels.
    pub flags: Option<String>,
    /// `cleave-units`, when the environment has identity sources: every unit the decision
    /// used.
    pub units: Option<String>,
    /// `Set-Cookie` value of the visitor's new sticky record, when it changed.
    pub sticky_cookie: Option<String>,
    /// `cleave-consent`, when the environment asks for consent: `yes` or `no`.
    pub consent: Option<&'static str>,
    /// `(experiment, variant)` pairs, only when pages expose them (`CLEAVE_EXPOSE_ASSIGNMENTS`).
    pub pairs: Vec<(String, String)>,
    /// Whether any experiment applies to the route: the response then depends on the visitor.
    pub varies: bool,
    /// `(Location, status)`.
    pub redirect: Option<(String, u16)>,
    /// Base URL of the origin a variant routes to (from the snapshot's allow-list).
    pub origin: Option<String>,
    /// Path a variant rewrites the request to.
    pub path: Option<String>,
    /// The page's exposures, recorded once the origin has said what it used.
    pub exposures: Exposures,
}

impl Decision {
    /// What the page's variant depends on, for the edge cache's key: the assignments, and
    /// the flag values and the visitor's consent when the environment has them. Without
    /// either, the assignments alone, as before.
    pub fn variation(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        if self.flags.is_none() && self.consent.is_none() && self.units.is_none() {
            return self.assignments.as_deref().map(Cow::Borrowed);
        }
        Some(Cow::Owned(format!(
            "{}\nflags:{}\nconsent:{}\nunits:{}",
            self.assignments.as_deref().unwrap_or(""),
            self.flags.as_deref().unwrap_or(""),
            self.consent.unwrap_or(""),
            self.units.as_deref().unwrap_or("")
        )))
    }
}

/// Who is asking: the visitor id, the request's `Cookie` header and its method.
#[derive(Debug, Clone, Copy)]
pub struct Visitor<'a> {
    pub uid: &'a str,
    pub cookie: Option<&'a str>,
    pub method: &'a str,
    /// Gave the environment's consent signal (or it asks for none).
    pub consented: bool,
}

/// Decides for `visitor`; with no snapshot in service, fails open.
pub fn decide(
    served: &Served,
    req: &Request,
    url: &RequestUrl,
    visitor: Visitor<'_>,
    config: &Config,
    now: u64,
) -> Decision {
    let environment = config.environment.as_str();
    let Some(engine) = decision::engine(served, environment, Mode::Proxy, req) else {
        return Decision {
            snapshot: "none".to_owned(),
            ..Decision::default()
        };
    };
    let route = RequestRoute {
        host: url.host_str().unwrap_or(""),
        path: url.path(),
    };
    let now_ms = crate::signed_ms(now);
    // Without consent the visitor is nobody: no unit, nothing recorded.
    let identities = if visitor.consented {
        // A token still waiting for its verdict counts as absent (the async path verifies
        // before deciding, so this is only a verdict table that just started again).
        identity_sources::resolve(engine, req, visitor.cookie, config, now_ms).unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut units = Units::new();
    if visitor.consented {
        units.insert("user".to_owned(), visitor.uid.to_owned());
        for i in &identities {
            units.insert(i.unit.clone(), i.id.clone());
        }
    }
    let source =
        decision::collected(config, Some(Source::ProxyImplicit)).filter(|_| visitor.consented);
    let mut attributes = Attributes::new();
    // Lenient: a missing or malformed schema attribute only makes its conditions false.
    let bot =
        enrich(engine, req, url, &mut attributes, false, source.is_some()).is_ok_and(|c| c.bot);
    // An invalid, tampered or expired QA cookie is ignored: the visitor is bucketed.
    let forced = visitor
        .cookie
        .and_then(|c| cookie_value(c, FORCE_COOKIE))
        .filter(|token| token.len() <= crate::decide_request::limits::TOKEN_BYTES)
        .and_then(|token| verify_force(config, &config.environment, token, now_ms).ok());
    let sticky_key = config.signing_keys.as_ref().map(|k| &k.sticky[..]);
    let sticky_sent = visitor.cookie.and_then(|c| cookie_value(c, STICKY_COOKIE));
    // An unreadable record (a rotated key, a cookie of another deployment) is replaced.
    let sticky = sticky_key
        .zip(sticky_sent)
        .filter(|_| visitor.consented)
        .and_then(|(key, token)| Sticky::open(key, token).ok());
    let subject = Subject {
        units: &units,
        attributes: &attributes,
        now_ms,
        only: None,
        forced: forced.as_ref(),
        bot,
        // A variant first given on the fallback unit (the cookie id) survives login.
        sticky: sticky.as_ref(),
        route: Some(route),
    };
    // The edge issued the visitor's id, and verified sources proved the rest: those
    // exposures are the visitor's own.
    let caller = Caller::visitor_with(Some(visitor.uid), &identities);
    let ask = Ask {
        environment,
        mode: Mode::Proxy,
        source,
        binding: caller.binding(Some(engine)),
    };
    let decision::Decided {
        assignments: mut decided,
        exposures,
    } = decision::assign(engine, served, &ask, &subject, now);
    let flags = if engine.snapshot().flags.is_empty() {
        None
    } else {
        let values: Vec<_> = engine
            .evaluate_flags_given(&subject, None, Some(&decided))
            .into_iter()
            .filter_map(|outcome| match outcome {
                FlagOutcome::Value(v) => Some(v),
                FlagOutcome::TargetingKeyMissing(_) => None,
            })
            .collect();
        flags_header(&values)
    };
    let sticky_cookie = sticky_key
        .filter(|_| visitor.consented)
        .and_then(|key| {
            let mut record = sticky.clone().unwrap_or_default();
            record.record(|k| engine.experiment(k).is_some(), &units, &decided);
            record.seal(key).ok().flatten()
        })
        .filter(|token| Some(token.as_str()) != sticky_sent)
        .map(|token| sticky_set_cookie(&token));
    let units_sent = (!engine.snapshot().identity.is_empty()).then(|| {
        units_header(units.iter().map(|(unit, id)| {
            let verified = identities.iter().any(|i| i.verified && &i.unit == unit);
            (unit.as_str(), id.as_str(), verified)
        }))
    });
    let consent = engine.snapshot().consent.as_ref();
    if let Some(c) = consent.filter(|_| !visitor.consented) {
        if c.without == WithoutConsent::Control {
            decided = engine.controls(Some(route));
        }
    }
    let safe_method = matches!(visitor.method, "GET" | "HEAD");
    let routing = Routing::of(&decided, safe_method, bot);
    let origins = &engine.snapshot().origins;
    Decision {
        snapshot: engine.snapshot().version.to_string(),
        assignments: assignments_header(&decided),
        flags,
        units: units_sent.flatten(),
        sticky_cookie,
        consent: consent.map(|_| if visitor.consented { "yes" } else { "no" }),
        pairs: if config.expose.cookie || config.expose.html {
            decided
                .iter()
                .map(|a| (a.experiment.key.clone(), a.variant.key.clone()))
                .collect()
        } else {
            Vec::new()
        },
        // A page with any assignment (a forced draft's too) is the visitor's own.
        varies: engine.varies(route) || !decided.is_empty(),
        redirect: routing
            .redirect
            .map(|(target, status)| (redirect_location(target, url.query()), status)),
        origin: routing.origin.and_then(|name| origins.get(name)).cloned(),
        path: routing.rewrite.map(|t| rewrite_path(t, url.path())),
        exposures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_variation_tells_consent_and_flags_apart() {
        let page = |flags: Option<&str>, consent: Option<&'static str>| Decision {
            assignments: Some(r#"hero="control""#.to_owned()),
            flags: flags.map(str::to_owned),
            consent,
            ..Decision::default()
        };
        let variation = |d: &Decision| d.variation().map(|v| v.into_owned());
        // Without flags or consent the key is the assignments alone, as it always was.
        assert_eq!(
            variation(&page(None, None)).as_deref(),
            Some(r#"hero="control""#)
        );
        let (yes, no) = (page(None, Some("yes")), page(None, Some("no")));
        assert_ne!(
            variation(&yes),
            variation(&no),
            "a consenting visitor's page is not another's"
        );
        assert_ne!(
            variation(&page(Some("beta"), None)),
            variation(&page(Some("beta=?0"), None))
        );
    }
}
