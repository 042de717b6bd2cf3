//! The decision steps the decide API, confirmations and proxy mode share, in one place so
//! their rules cannot drift: fail open without a snapshot, assign, turn what was seen into
//! exposures for the units the caller may speak for, report the decision.

use std::collections::BTreeSet;
use std::rc::Rc;

use cleave_core::exposure::{
    declared_by_origin, exposures_of, holdout_exposure, Binding, Exposure, Source,
};
use cleave_core::snapshot::AnonymousExposures;
use cleave_core::{order, Assignment, Engine, Subject};
use worker::web_sys::Request;
use worker::worker_sys::Context;

use crate::config::Config;
use crate::identity::{cookie_value, uid_from_cookies};
use crate::identity_sources::RequestUnit;
use crate::snapshot_store::Served;
use crate::telemetry::{self, Event};

/// Which door a decision came through, as telemetry names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Api,
    Proxy,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Proxy => "proxy",
        }
    }
}

/// The engine in service for `environment`; with none, the fail-open is reported and the
/// caller answers without assignments.
pub fn engine<'s>(
    served: &'s Served,
    environment: &str,
    mode: Mode,
    req: &Request,
) -> Option<&'s Rc<Engine>> {
    if served.engine.is_none() {
        telemetry::report(Event::FailOpen {
            environment,
            mode: mode.as_str(),
            reason: served.failure.as_deref().unwrap_or("not loaded"),
            request_id: &crate::telemetry::request_id(req),
        });
    }
    served.engine.as_ref()
}

/// Who the caller may record exposures and events for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Carries `CLEAVE_SERVER_TOKEN`.
    Server,
    /// Bound to these `(unit type, id)` pairs: its own `cleave_uid` as its `user` unit.
    Bound(Vec<(String, String)>),
    /// A visitor who has not given the environment's consent signal: nothing of theirs is
    /// recorded.
    Unconsented,
}

impl Caller {
    /// The caller of `req`: a trusted server, else bound to the `cleave_uid` its cookie
    /// carries and the verified ids among `identities` — when `engine`'s environment asks for
    /// consent, only if it gave it.
    pub fn of(
        req: &Request,
        config: &Config,
        engine: Option<&Engine>,
        identities: &[RequestUnit],
    ) -> Self {
        let headers = req.headers();
        if let Some(expected) = config.server_token.as_deref() {
            let presented = headers.get("authorization").ok().flatten();
            if crate::auth::bearer_matches(presented.as_deref(), expected) {
                return Self::Server;
            }
        }
        let cookie = headers.get("cookie").ok().flatten();
        if !consented(engine, req, cookie.as_deref()) {
            return Self::Unconsented;
        }
        Self::visitor_with(cookie.as_deref().and_then(uid_from_cookies), identities)
    }

    /// A visitor known by its `cleave_uid` and the ids its verified identity sources gave;
    /// ids from unverified sources bind nothing (a client chose them).
    pub fn visitor_with(uid: Option<&str>, identities: &[RequestUnit]) -> Self {
        let own = uid.map(|u| ("user".to_owned(), u.to_owned()));
        let verified = identities
            .iter()
            .filter(|i| i.verified)
            .map(|i| (i.unit.clone(), i.id.clone()));
        Self::Bound(own.into_iter().chain(verified).collect())
    }

    /// The binding under `engine`'s environment settings.
    pub fn binding<'c>(&'c self, engine: Option<&Engine>) -> Binding<'c> {
        let open =
            engine.is_some_and(|e| e.snapshot().anonymous_exposures == AnonymousExposures::Any);
        match self {
            Self::Server => Binding::Any,
            Self::Unconsented => Binding::Units(&[]),
            Self::Bound(_) if open => Binding::Any,
            Self::Bound(units) => Binding::Units(units),
        }
    }
}

/// Whether `req` (with its `Cookie` header `cookie`) gives the consent `engine`'s environment
/// asks for; true when it asks for none.
pub fn consented(engine: Option<&Engine>, req: &Request, cookie: Option<&str>) -> bool {
    let Some(consent) = engine.and_then(|e| e.snapshot().consent.as_ref()) else {
        return true;
    };
    cleave_core::consent::consents(
        consent,
        |name| req.headers().get(name).ok().flatten(),
        |name| {
            cookie
                .and_then(|c| cookie_value(c, name))
                .map(str::to_owned)
        },
    )
}

/// One decision's assignments and the exposures they may become.
pub struct Decided<'e> {
    pub assignments: Vec<Assignment<'e>>,
    pub exposures: Exposures,
}

/// Exposures on their way out: recorded now (the API) or once the origin has said what its
/// page used (proxy mode).
#[derive(Debug, Default)]
pub struct Exposures {
    environment: String,
    records: Vec<Exposure>,
    /// Experiments with routes, which the page matched to be assigned at all.
    route_scoped: BTreeSet<String>,
    /// The unit's holdout exposure: recorded whatever the origin declares, held out or not.
    holdout: Option<Exposure>,
}

impl Exposures {
    /// Keeps what the origin's `cleave-exposed` header declares (docs/contracts.md §8).
    #[must_use]
    pub fn declared(mut self, header: Option<&str>) -> Self {
        self.records = declared_by_origin(self.records, header, &self.route_scoped);
        self
    }

    /// Experiment keys that will be recorded.
    pub fn experiments(&self) -> BTreeSet<&str> {
        order::set_of(self.records.iter().map(|e| e.experiment.as_str()))
    }

    /// Sends them on (when collection is configured).
    pub fn record(mut self, config: &Config, ctx: &Context) {
        self.records.extend(self.holdout);
        crate::delivery::send_exposures(config, ctx, &self.environment, self.records);
    }
}

/// `source`, or `None` when this worker collects nothing (no `CLEAVE_INGEST_URL`): then no
/// exposure is even computed.
pub fn collected(config: &Config, source: Option<Source>) -> Option<Source> {
    source.filter(|_| config.ingest_url.is_some())
}

/// How one decision is asked for.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub environment: &'a str,
    pub mode: Mode,
    /// Where the assignments' exposures come from; `None` when the call only looks or nothing
    /// is collected ([`collected`]).
    pub source: Option<Source>,
    /// Whose exposures the caller may record.
    pub binding: Binding<'a>,
}

/// Assigns `subject` and reports the decision; the assignments become exposures as `ask`
/// says.
pub fn assign<'e>(
    engine: &'e Engine,
    served: &Served,
    ask: &Ask<'_>,
    subject: &Subject<'_>,
    now: u64,
) -> Decided<'e> {
    let environment = ask.environment;
    let assignments = engine.assign(subject);
    let mut exposures = exposures(ask, subject, &assignments);
    exposures.holdout = ask
        .source
        .and_then(|source| holdout_exposure(environment, engine, subject, source, &ask.binding));
    telemetry::report(Event::Decision {
        environment,
        mode: ask.mode.as_str(),
        version: engine.snapshot().version,
        assignments: assignments.len(),
        age_ms: served.age_ms(now),
    });
    Decided {
        assignments,
        exposures,
    }
}

/// What `assignments` become as exposures, as `ask` says.
pub fn exposures(
    ask: &Ask<'_>,
    subject: &Subject<'_>,
    assignments: &[Assignment<'_>],
) -> Exposures {
    let records = match ask.source {
        Some(source) if !assignments.is_empty() => {
            exposures_of(ask.environment, subject, assignments, source, &ask.binding)
        }
        _ => Vec::new(),
    };
    // Only a proxied page's declaration narrows by route.
    let route_scoped = if ask.mode == Mode::Proxy && !records.is_empty() {
        order::set_of(
            assignments
                .iter()
                .filter(|a| a.experiment.routes.is_some())
                .map(|a| a.experiment.key.clone()),
        )
    } else {
        BTreeSet::new()
    };
    Exposures {
        environment: ask.environment.to_owned(),
        records,
        route_scoped,
        holdout: None,
    }
}
