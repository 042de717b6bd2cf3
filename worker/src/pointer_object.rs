//! `SnapshotPointer`, the Durable Object holding one environment's pointer register
//! (`cleave_core::pointer_register`), and the client isolates and the push endpoint use.
//!
//! One object per environment (named by it). Isolates read it at every refresh instead of
//! KV's cached copy, so a publish reaches every edge within `CLEAVE_REFRESH_MS`; the admin
//! writes it through `PUT /_cleave/v1/pointer` before it writes KV. When the object cannot be
//! reached, or holds nothing yet, isolates read KV as before.
//!
//! Requests to the object: `GET /?env=E` answers the register as JSON; `PUT /?env=E` with a
//! pointer pushes it (409 with the refusal when it may not replace what is held). The object
//! speaks plain `Request`/`Response` through a few lines of JavaScript, as proxy mode does,
//! rather than workers-rs's request types, which would double the bundle.

use std::cell::RefCell;
use std::rc::Rc;

use cleave_core::pointer::Pointer;
use cleave_core::pointer_register::Register;
use cleave_core::snapshot::pointer_key;
use worker::js_sys::Promise;
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{Request, Response, ResponseInit};
use worker::Env;
// The exported struct's expansion names the crate as `wasm_bindgen`.
use worker::wasm_bindgen;

use crate::config::SNAPSHOTS_BINDING as SNAPSHOTS;
use crate::snapshot_signature;

/// Binding of the `SnapshotPointer` namespace. Without it the worker reads pointers from KV.
pub const BINDING: &str = "CLEAVE_POINTERS";

#[wasm_bindgen(
    wasm_bindgen = ::worker::wasm_bindgen,
    inline_js = r#"
export function ask(namespace, name, method, body) {
  const stub = namespace.get(namespace.idFromName(name));
  const url = "https://pointer.cleave/?env=" + encodeURIComponent(name);
  return stub.fetch(url, { method, body }).then(async (res) => [res.status, await res.text()]);
}
export function stored(state) { return state.storage.get("register"); }
export function store(state, text) { return state.storage.put("register", text); }
"#
)]
extern "C" {
    /// `[status, body]` of a request to the object named `name`.
    #[wasm_bindgen(catch)]
    fn ask(
        namespace: &JsValue,
        name: &str,
        method: &str,
        body: Option<String>,
    ) -> Result<Promise, JsValue>;
    /// The register's JSON text, or `undefined`.
    #[wasm_bindgen(catch)]
    fn stored(state: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch)]
    fn store(state: &JsValue, text: &str) -> Result<Promise, JsValue>;
}

/// The Durable Object. workerd constructs it through `worker/js/entry.mjs`.
#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
pub struct SnapshotPointer {
    inner: Rc<Object>,
}

struct Object {
    state: JsValue,
    env: Env,
    /// The register as last stored, and when KV was last read (epoch ms); loaded on first use.
    memory: RefCell<Option<(Register, Option<u64>)>>,
}

#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
impl SnapshotPointer {
    #[wasm_bindgen(constructor)]
    pub fn new(state: JsValue, env: Env) -> Self {
        let inner = Object {
            state,
            env,
            memory: RefCell::new(None),
        };
        Self {
            inner: Rc::new(inner),
        }
    }

    /// Answers a request to the object.
    pub fn fetch(&self, req: Request) -> Promise {
        let object = Rc::clone(&self.inner);
        crate::spawn(Box::pin(async move {
            let (status, body) = object.answer(req).await.unwrap_or_else(|e| {
                let message = e.as_string().unwrap_or_else(|| format!("{e:?}"));
                (500, message)
            });
            respond(status, &body).map(JsValue::from)
        }))
    }
}

impl Object {
    async fn answer(&self, req: Request) -> Result<(u16, String), JsValue> {
        // Not `url::Url`: its IDNA tables alone would add about 200 KB to the bundle.
        let Some(environment) = crate::request_url::RequestUrl::new(req.url()).and_then(|url| {
            url.query_pairs()
                .find(|(name, _)| name == "env")
                .map(|(_, value)| value.into_owned())
        }) else {
            return Ok((400, "env is required".to_owned()));
        };
        match req.method().as_str() {
            "GET" => {
                let register = self.read(&environment).await?;
                Ok((200, to_json(&register)?))
            }
            "PUT" => {
                let text = JsFuture::from(req.text()?)
                    .await?
                    .as_string()
                    .unwrap_or_default();
                let Ok(offered) = serde_json::from_slice::<Pointer>(text.as_bytes()) else {
                    return Ok((400, "the body is not a pointer".to_owned()));
                };
                let mut register = self.load().await?;
                if let Err(refusal) = register.push(offered) {
                    return Ok((409, refusal.to_string()));
                }
                self.store(&register).await?;
                Ok((200, to_json(&register)?))
            }
            _ => Ok((405, "GET or PUT".to_owned())),
        }
    }

    /// The register, after reading KV when due and taking what it offers that is news.
    async fn read(&self, environment: &str) -> Result<Register, JsValue> {
        let now = crate::now_ms();
        let register = self.load().await?;
        let checked = self.memory.borrow().as_ref().and_then(|(_, at)| *at);
        if !register.store_check_due(checked, now) {
            return Ok(register);
        }
        let kv = self.env.kv(SNAPSHOTS).map_err(JsValue::from)?;
        let stored = kv
            .get(&pointer_key(environment))
            .text()
            .await
            .ok()
            .flatten()
            .and_then(|text| serde_json::from_slice::<Pointer>(text.as_bytes()).ok());
        // Once pushed to, with signatures required, a pointer nobody signed is not news:
        // taken, a KV writer's higher version would make the admin's pushes look like
        // downgrades. Before that the object mirrors KV and isolates judge what it holds.
        let public_key = register
            .pushed
            .then(|| crate::isolate::start(&self.env).snapshot_public_key.clone())
            .flatten();
        let stored = match (stored, public_key) {
            (Some(pointer), Some(key)) => {
                let now = i64::try_from(now).unwrap_or(i64::MAX);
                snapshot_signature::verify_fresh(&key, environment, &pointer, now)
                    .await
                    .is_ok()
                    .then_some(pointer)
            }
            (stored, None) => stored,
            (None, Some(_)) => None,
        };
        // Loaded again: a push may have landed while KV was read.
        let mut register = self.load().await?;
        if let Some(memory) = self.memory.borrow_mut().as_mut() {
            memory.1 = Some(now);
        }
        if let Some(stored) = stored {
            if register.adopt_from_store(stored) {
                self.store(&register).await?;
            }
        }
        Ok(register)
    }

    async fn load(&self) -> Result<Register, JsValue> {
        if let Some((register, _)) = self.memory.borrow().as_ref() {
            return Ok(register.clone());
        }
        let text = JsFuture::from(stored(&self.state)?).await?;
        let register = text
            .as_string()
            .and_then(|t| serde_json::from_slice(t.as_bytes()).ok())
            .unwrap_or_default();
        let mut memory = self.memory.borrow_mut();
        Ok(memory.get_or_insert((register, None)).0.clone())
    }

    async fn store(&self, register: &Register) -> Result<(), JsValue> {
        JsFuture::from(store(&self.state, &to_json(register)?)?).await?;
        if let Some(memory) = self.memory.borrow_mut().as_mut() {
            memory.0 = register.clone();
        }
        Ok(())
    }
}

fn to_json(register: &Register) -> Result<String, JsValue> {
    serde_json::to_string(register).map_err(|e| JsValue::from_str(&e.to_string()))
}

fn respond(status: u16, body: &str) -> Result<Response, JsValue> {
    let init = ResponseInit::new();
    init.set_status(status);
    Response::new_with_opt_str_and_init(Some(body), &init)
}

/// The namespace binding, when the worker has one.
fn namespace(env: &Env) -> Option<JsValue> {
    let value = worker::js_sys::Reflect::get(env, &JsValue::from_str(BINDING)).ok()?;
    (!value.is_undefined() && !value.is_null()).then_some(value)
}

/// Whether this worker has a pointer object to push to.
pub fn is_bound(env: &Env) -> bool {
    namespace(env).is_some()
}

/// `[status, body]` of one request to the object of `environment`.
async fn request(
    namespace: &JsValue,
    environment: &str,
    method: &str,
    body: Option<String>,
) -> Result<(u16, String), String> {
    let promise = ask(namespace, environment, method, body).map_err(describe)?;
    let pair = JsFuture::from(promise).await.map_err(describe)?;
    let pair: worker::js_sys::Array = pair.unchecked_into();
    let status = pair.get(0).as_f64().unwrap_or(0.0);
    // An HTTP status: exact in u16.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let status = status as u16;
    Ok((status, pair.get(1).as_string().unwrap_or_default()))
}

fn describe(error: JsValue) -> String {
    error
        .dyn_ref::<worker::js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "unknown error".to_owned())
}

/// The object's pointer for `environment`: `Ok(None)` when the worker has no binding or the
/// object holds nothing yet, `Err` when it could not be asked (KV is read instead).
pub async fn current(env: &Env, environment: &str) -> Result<Option<Pointer>, String> {
    let Some(namespace) = namespace(env) else {
        return Ok(None);
    };
    let (status, body) = request(&namespace, environment, "GET", None)
        .await
        .map_err(|e| format!("pointer object unreachable: {e}"))?;
    if status != 200 {
        return Err(format!("pointer object answered {status}: {body}"));
    }
    serde_json::from_slice::<Register>(body.as_bytes())
        .map(|register| register.pointer)
        .map_err(|e| format!("pointer object answered an unreadable register: {e}"))
}

/// Pushes `pointer` (its JSON text) to the object of `environment`: the object's status and
/// body (the register it now holds on 200, the refusal on 409).
pub async fn push(env: &Env, environment: &str, pointer: String) -> Result<(u16, String), String> {
    let namespace = namespace(env).ok_or_else(|| format!("no {BINDING} binding"))?;
    request(&namespace, environment, "PUT", Some(pointer)).await
}
