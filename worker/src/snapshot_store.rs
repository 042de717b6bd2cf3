//! The snapshot in service, per environment, kept for the life of the isolate.
//!
//! The pointer `snapshot:{env}:current` is re-read at most every `CLEAVE_REFRESH_MS`; a body is
//! fetched and parsed only when the pointer names a version other than the one in service. A
//! version that fails to load never replaces a good one and is retried at the next refresh.
//! Isolates are recycled at will, so this is a cache, never the source of truth.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use cleave_core::snapshot::{binary_key, body_key, pointer_key, Pointer, BINARY_FORMAT};
use cleave_core::Engine;
use worker::kv::KvStore;
use worker::wasm_bindgen::JsValue;
use worker::worker_sys::Context;
use worker::Env;

use crate::assignment_views::AssignmentViews;
use crate::config::Config;
use crate::pointer_object;
use crate::snapshot_signature;
use crate::telemetry::{self, Event};

/// KV binding that holds snapshots.
pub use crate::config::SNAPSHOTS_BINDING as BINDING;

/// Environments remembered per isolate; bounds memory when callers name many environments.
const MAX_ENVIRONMENTS: usize = 32;

/// A refresh still "in flight" after this long is taken to be abandoned.
const ABANDONED_REFRESH_MS: u64 = 10_000;

/// Environments this isolate holds nothing for that it may look up in KV per window: a caller
/// naming random environments (`/_cleave/health?env=<random>`) costs at most this many KV
/// reads per second, not one per request. `CLEAVE_ENV` is never limited.
const NEW_LOOKUPS_PER_WINDOW: u32 = 5;
const NEW_LOOKUP_WINDOW_MS: u64 = 1_000;

/// What a request sees: the good snapshot (if any) and why the latest refresh failed (if it did).
#[derive(Debug, Clone, Default)]
pub struct Served {
    pub engine: Option<Rc<Engine>>,
    /// Response entries of `engine`'s variants.
    pub views: Rc<AssignmentViews>,
    pub failure: Option<Rc<str>>,
    /// When `engine`'s snapshot was published, epoch ms (parsed once, for its age).
    pub published_ms: Option<i64>,
    /// What `engine` was decoded from, and why the pointer's sidecar was not used if it was not.
    pub source: Source,
    /// When the pointer was last read, epoch ms.
    pub checked_at_ms: Option<u64>,
    /// Where the latest refresh read the pointer: `object` (the environment's
    /// `SnapshotPointer`) or `kv`.
    pub pointer_from: &'static str,
    /// Why the pointer object was not used at the latest refresh, when the worker has one.
    pub pointer_problem: Option<Rc<str>>,
}

impl Served {
    /// How old the snapshot in service is at `now_ms`.
    pub fn age_ms(&self, now_ms: u64) -> Option<i64> {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        self.published_ms.map(|at| now.saturating_sub(at).max(0))
    }
}

/// Which encoding of a version the worker decoded.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// `binary` (the sidecar) or `json` (the body).
    pub encoding: &'static str,
    /// Why a sidecar the pointer offered was not used (the body was, in its place).
    pub sidecar_problem: Option<Rc<str>>,
}

#[derive(Debug, Default)]
struct EnvState {
    served: Served,
    /// Set while a refresh is in flight, so concurrent requests do not all hit KV.
    refreshing: bool,
}

thread_local! {
    static STATES: RefCell<BTreeMap<String, EnvState>> = const { RefCell::new(BTreeMap::new()) };
    /// `(window start, lookups in it)` of environments the isolate held nothing for.
    static NEW_LOOKUPS: RefCell<(u64, u32)> = const { RefCell::new((0, 0)) };
}

/// The snapshot to use for `environment` now, refreshing it from KV when due.
pub async fn current(env: &Env, config: &Config, environment: &str, now_ms: u64) -> Served {
    let known = STATES.with(|states| states.borrow().contains_key(environment));
    if !known && environment != config.environment && !new_lookup_allowed(now_ms) {
        return Served {
            failure: Some(Rc::from(
                "too many lookups of environments this isolate does not hold; retry shortly",
            )),
            ..Served::default()
        };
    }
    if claim_refresh(environment, config.refresh_ms, now_ms) {
        refresh(
            env,
            environment,
            config.snapshot_public_key.as_deref(),
            now_ms,
        )
        .await;
    }
    STATES.with(|states| {
        states
            .borrow()
            .get(environment)
            .map(|s| s.served.clone())
            .unwrap_or_default()
    })
}

/// Counts a KV lookup of an environment the isolate holds nothing for; `false` when the
/// window's budget is spent.
fn new_lookup_allowed(now_ms: u64) -> bool {
    NEW_LOOKUPS.with(|cell| {
        let mut window = cell.borrow_mut();
        if now_ms.saturating_sub(window.0) >= NEW_LOOKUP_WINDOW_MS {
            *window = (now_ms, 0);
        }
        window.1 += 1;
        window.1 <= NEW_LOOKUPS_PER_WINDOW
    })
}

/// The snapshot for `environment` to answer with now, without waiting: what the isolate
/// holds, with a refresh that is due started beside the request (`ctx.waitUntil`), so once an
/// isolate holds a version no request waits on the pointer or KV. `None` when it holds nothing
/// yet: the caller waits on [`current`].
pub fn fresh(
    env: &Env,
    ctx: &Context,
    config: &Config,
    environment: &str,
    now_ms: u64,
) -> Option<Served> {
    let (served, claimed) = STATES.with(|states| {
        let mut states = states.borrow_mut();
        let state = states.get_mut(environment)?;
        state.served.engine.as_ref()?;
        let claimed = claim(state, config.refresh_ms, now_ms);
        Some((state.served.clone(), claimed))
    })?;
    if claimed {
        let env = env.clone();
        let environment = environment.to_owned();
        let public_key = config.snapshot_public_key.clone();
        let background = async move {
            refresh(&env, &environment, public_key.as_deref(), now_ms).await;
            Ok(JsValue::UNDEFINED)
        };
        // Without waitUntil the refresh may be cut short; the next due request retries it.
        let _ = ctx.wait_until(&crate::spawn(Box::pin(background)));
    }
    Some(served)
}

/// One refresh of `environment`, its outcome recorded for the requests that follow.
async fn refresh(env: &Env, environment: &str, public_key: Option<&str>, now_ms: u64) {
    let held = snapshot_of(environment);
    let outcome = load(env, environment, held.as_deref(), public_key, now_ms).await;
    finish_refresh(environment, outcome, now_ms);
}

/// Decides whether this request refreshes, and if so marks the refresh as in flight.
fn claim_refresh(environment: &str, refresh_ms: u64, now_ms: u64) -> bool {
    STATES.with(|states| {
        let mut states = states.borrow_mut();
        if !states.contains_key(environment) && states.len() >= MAX_ENVIRONMENTS {
            evict_one(&mut states);
        }
        let state = states.entry(environment.to_owned()).or_default();
        claim(state, refresh_ms, now_ms)
    })
}

/// Marks a due refresh of `state` as in flight; whether this caller runs it.
fn claim(state: &mut EnvState, refresh_ms: u64, now_ms: u64) -> bool {
    let due = needs_refresh(state, refresh_ms, now_ms);
    if due {
        state.refreshing = true;
        state.served.checked_at_ms = Some(now_ms);
    }
    due
}

/// A refresh is due when the pointer was read more than `refresh_ms` ago and no refresh is in
/// flight. A cold isolate (nothing good yet) always tries, so the first requests do not fail
/// for want of a refresh someone else started.
fn needs_refresh(state: &EnvState, refresh_ms: u64, now_ms: u64) -> bool {
    let checked = state.served.checked_at_ms;
    let due = checked.is_none_or(|at| now_ms.saturating_sub(at) >= refresh_ms);
    // A refresh whose request was cancelled never finishes; stop waiting for it.
    let in_flight = state.refreshing
        && checked.is_some_and(|at| now_ms.saturating_sub(at) < ABANDONED_REFRESH_MS);
    let cold = state.served.engine.is_none() && (checked.is_none() || in_flight);
    cold || (due && !in_flight)
}

fn evict_one(states: &mut BTreeMap<String, EnvState>) {
    let victim = states
        .iter()
        .find(|(_, s)| s.served.engine.is_none())
        .or_else(|| states.iter().next())
        .map(|(k, _)| k.clone());
    if let Some(victim) = victim {
        states.remove(&victim);
    }
}

fn snapshot_of(environment: &str) -> Option<Rc<Engine>> {
    STATES.with(|states| {
        states
            .borrow()
            .get(environment)
            .and_then(|s| s.served.engine.clone())
    })
}

/// Result of one refresh: a new engine, "unchanged", or why it failed.
enum Outcome {
    Loaded(Rc<Engine>, Source, PointerRead),
    Unchanged(PointerRead),
    Failed(String),
}

/// Where a refresh read the pointer, and why not from the object when it could not.
struct PointerRead {
    from: &'static str,
    problem: Option<Rc<str>>,
}

fn finish_refresh(environment: &str, outcome: Outcome, now_ms: u64) {
    STATES.with(|states| {
        let mut states = states.borrow_mut();
        let state = states.entry(environment.to_owned()).or_default();
        state.refreshing = false;
        state.served.checked_at_ms = Some(now_ms);
        match outcome {
            Outcome::Loaded(engine, source, read) => {
                state.served.pointer_from = read.from;
                state.served.pointer_problem = read.problem;
                let snapshot = engine.snapshot();
                let published_ms = cleave_core::time::parse_rfc3339_ms(&snapshot.published_at);
                state.served.published_ms = published_ms;
                state.served.views = Rc::new(AssignmentViews::new(&engine));
                telemetry::report(Event::SnapshotLoaded {
                    environment,
                    version: snapshot.version,
                    age_ms: state.served.age_ms(now_ms),
                    encoding: source.encoding,
                    sidecar_problem: source.sidecar_problem.as_deref(),
                });
                state.served.source = source;
                state.served.engine = Some(engine);
                state.served.failure = None;
            }
            Outcome::Unchanged(read) => {
                state.served.pointer_from = read.from;
                state.served.pointer_problem = read.problem;
                state.served.failure = None;
            }
            Outcome::Failed(reason) => {
                telemetry::report(Event::SnapshotRefused {
                    environment,
                    held: state.served.engine.as_ref().map(|e| e.snapshot().version),
                    reason: &reason,
                });
                state.served.failure = Some(reason.into());
            }
        }
    });
}

/// Reads the pointer and, when it names another version, that body. With a public key, the
/// pointer must carry an unexpired signed expiry (checked at every refresh, so a replayed or
/// frozen pointer stops being followed once it expires), be signed for this environment and
/// body, and may only go back in time with a rollback marker (`cleave_core::pointer`).
async fn load(
    env: &Env,
    environment: &str,
    held: Option<&Engine>,
    public_key: Option<&str>,
    now_ms: u64,
) -> Outcome {
    let kv = match env.kv(BINDING) {
        Ok(kv) => kv,
        Err(e) => return Outcome::Failed(format!("KV binding {BINDING} unavailable: {e}")),
    };
    let (pointer, read) = match read_pointer(env, &kv, environment).await {
        Ok(found) => found,
        Err(reason) => return Outcome::Failed(reason),
    };
    if let Some(public_key) = public_key {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        if let Err(reason) =
            snapshot_signature::verify_fresh(public_key, environment, &pointer, now).await
        {
            return Outcome::Failed(reason);
        }
    }
    let held_version = held.map(|e| e.snapshot().version);
    if held_version == Some(pointer.version) {
        return Outcome::Unchanged(read);
    }
    let version = pointer.version;
    if public_key.is_some() {
        if let Err(refusal) = pointer.may_replace(held_version) {
            return Outcome::Failed(refusal.to_string());
        }
    }
    let (engine, source) = match sidecar(&kv, environment, &pointer, public_key).await {
        Ok(Some(engine)) => {
            let source = Source {
                encoding: "binary",
                sidecar_problem: None,
            };
            (engine, source)
        }
        offered => {
            let engine = match json_body(&kv, environment, &pointer, public_key).await {
                Ok(engine) => engine,
                Err(reason) => return Outcome::Failed(reason),
            };
            let source = Source {
                encoding: "json",
                sidecar_problem: offered.err().map(Rc::from),
            };
            (engine, source)
        }
    };
    let snapshot = engine.snapshot();
    if snapshot.environment != environment || snapshot.version != version {
        return Outcome::Failed(format!(
            "v{version} refused: body says environment {:?} version {}",
            snapshot.environment, snapshot.version
        ));
    }
    Outcome::Loaded(Rc::new(engine), source, read)
}

/// The environment's pointer: from its `SnapshotPointer` when the worker has one and it holds
/// a pointer (strongly consistent, so fresh at every location), else from KV (cached up to
/// about a minute per location).
async fn read_pointer(
    env: &Env,
    kv: &KvStore,
    environment: &str,
) -> Result<(Pointer, PointerRead), String> {
    let problem = match pointer_object::current(env, environment).await {
        Ok(Some(pointer)) => {
            let read = PointerRead {
                from: "object",
                problem: None,
            };
            return Ok((pointer, read));
        }
        Ok(None) => None,
        Err(reason) => Some(Rc::from(reason)),
    };
    let text = match kv.get(&pointer_key(environment)).text().await {
        Ok(Some(text)) => text,
        Ok(None) => return Err("no snapshot published (pointer missing)".to_owned()),
        Err(e) => return Err(format!("KV error reading the pointer: {e}")),
    };
    let pointer = serde_json::from_slice(text.as_bytes())
        .map_err(|e| format!("pointer is not valid: {e}"))?;
    Ok((
        pointer,
        PointerRead {
            from: "kv",
            problem,
        },
    ))
}

/// The engine from the version's binary sidecar: `Ok(None)` when the pointer offers none this
/// build reads, `Err` when the one offered is unusable (the JSON body is then read instead).
async fn sidecar(
    kv: &KvStore,
    environment: &str,
    pointer: &Pointer,
    public_key: Option<&str>,
) -> Result<Option<Engine>, String> {
    if pointer.binary.as_ref().map(|b| b.format) != Some(BINARY_FORMAT) {
        return Ok(None);
    }
    let version = pointer.version;
    let what = format!("sidecar of v{version}");
    let bytes = read_bytes(kv, &binary_key(environment, version), &what).await?;
    if let Some(public_key) = public_key {
        snapshot_signature::verify_binary(public_key, environment, pointer, &bytes).await?;
    }
    Engine::decode_binary(&bytes)
        .map(Some)
        .map_err(|e| format!("{what} refused: {e}"))
}

/// The engine from the version's JSON body, the source of truth.
async fn json_body(
    kv: &KvStore,
    environment: &str,
    pointer: &Pointer,
    public_key: Option<&str>,
) -> Result<Engine, String> {
    let version = pointer.version;
    let what = format!("body of v{version}");
    let body = read_bytes(kv, &body_key(environment, version), &what).await?;
    if let Some(public_key) = public_key {
        snapshot_signature::verify(public_key, environment, pointer, &body).await?;
    }
    Engine::decode(&body).map_err(|e| format!("v{version} refused: {e}"))
}

/// The value under `key`; `what` names it in the error when it is missing or unreadable.
async fn read_bytes(kv: &KvStore, key: &str, what: &str) -> Result<Vec<u8>, String> {
    match kv.get(key).bytes().await {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(format!("{what} is missing")),
        Err(e) => Err(format!("KV error reading the {what}: {e}")),
    }
}
