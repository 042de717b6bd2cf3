//! Edge-derived attributes (docs/contracts.md §4): filled in by the worker from the request itself, in
//! namespaces a request cannot set.

use cleave_core::Attributes;
use worker::js_sys::Reflect;
use worker::wasm_bindgen::JsValue;
use worker::web_sys::Request;

use crate::request_url::RequestUrl;

/// Adds `cf.*` and `url.*` attributes, overwriting anything of the same name (`ua.*` comes
/// from [`crate::request_context`]).
pub fn add_edge_attributes(req: &Request, url: &RequestUrl, attributes: &mut Attributes) {
    // Read `request.cf` through Reflect: its fields are optional (absent under local dev), and
    // the typed getters in workers-rs panic on a missing field.
    if let Ok(cf) = Reflect::get(req, &JsValue::from_str("cf")) {
        if cf.is_object() {
            for (field, name) in [
                ("country", "cf.country"),
                ("colo", "cf.colo"),
                ("region", "cf.region"),
            ] {
                if let Some(value) = string_field(&cf, field) {
                    attributes.insert(name.to_owned(), value);
                }
            }
            if let Some(asn) = Reflect::get(&cf, &JsValue::from_str("asn"))
                .ok()
                .and_then(|v| v.as_f64())
            {
                attributes.insert("cf.asn".to_owned(), format!("{asn}"));
            }
        }
    }
    attributes.insert("url.path".to_owned(), url.path().to_owned());
    if let Some(host) = url.host_str() {
        attributes.insert("url.host".to_owned(), host.to_owned());
    }
}

fn string_field(object: &JsValue, field: &str) -> Option<String> {
    Reflect::get(object, &JsValue::from_str(field))
        .ok()
        .and_then(|v| v.as_string())
        .filter(|v| !v.is_empty())
}
