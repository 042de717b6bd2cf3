//! Per-client limits on the decide API and event posts through the Workers rate-limiting
//! binding, when one is bound as `DECIDE_RATE_LIMITER`. Only these are limited: proxied traffic is the
//! customer's site and never limited by cleave. A limiter that errors lets the call through
//! (fail open): a broken limiter must not take decisions down.

use worker::js_sys::{self, Function, Object, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::Request;
use worker::Env;

/// Name of the rate-limiting binding (`[[ratelimits]]` in wrangler.toml).
pub const BINDING: &str = "DECIDE_RATE_LIMITER";

/// What identifies a client: its IP (`cf-connecting-ip`), or a request header such as an API
/// key (`CLEAVE_RATE_LIMIT_KEY=header:x-api-key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKey {
    Ip,
    Header(String),
}

impl ClientKey {
    /// Reads `CLEAVE_RATE_LIMIT_KEY`; anything unrecognised means the IP.
    pub fn parse(setting: Option<&str>) -> Self {
        match setting.and_then(|s| s.trim().strip_prefix("header:")) {
            Some(name) if !name.trim().is_empty() => Self::Header(name.trim().to_ascii_lowercase()),
            _ => Self::Ip,
        }
    }

    fn of(&self, req: &Request) -> String {
        let header = match self {
            Self::Ip => "cf-connecting-ip",
            Self::Header(name) => name,
        };
        let value = req.headers().get(header).ok().flatten().unwrap_or_default();
        let value = match self {
            Self::Ip => client_network(&value),
            Self::Header(_) => value,
        };
        // Limit keys are small; a client cannot grow the limiter's key space with long values.
        let value: String = value.chars().take(128).collect();
        format!("{header}:{value}")
    }
}

/// The part of a client address that identifies one client: the whole IPv4 address, the /64
/// of an IPv6 address (one subscriber's network: rotating within it evades nothing).
pub fn client_network(ip: &str) -> String {
    match ip.trim().parse::<std::net::Ipv6Addr>() {
        Ok(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(v6) => v6
            .to_ipv4_mapped()
            .map(|v4| v4.to_string())
            .unwrap_or_default(),
        Err(_) => ip.trim().to_owned(),
    }
}

/// Whether the environment binds a limiter (checked once per isolate).
pub fn is_bound(env: &Env) -> bool {
    Reflect::get(env, &JsValue::from_str(BINDING)).is_ok_and(|b| b.is_object())
}

/// Whether this client may make another decide call now.
pub async fn allows(env: &Env, key: &ClientKey, req: &Request) -> bool {
    match ask(env, &key.of(req)).await {
        Ok(allowed) => allowed,
        Err(e) => {
            worker::console_warn!("cleave: rate limiter failed, letting the call through: {e:?}");
            true
        }
    }
}

async fn ask(env: &Env, key: &str) -> Result<bool, JsValue> {
    let limiter = Reflect::get(env, &JsValue::from_str(BINDING))?;
    let limit: Function = Reflect::get(&limiter, &JsValue::from_str("limit"))?.dyn_into()?;
    let options = Object::new();
    Reflect::set(&options, &JsValue::from_str("key"), &JsValue::from_str(key))?;
    let promise: js_sys::Promise = limit.call1(&limiter, &options)?.dyn_into()?;
    let outcome = JsFuture::from(promise).await?;
    let success = Reflect::get(&outcome, &JsValue::from_str("success"))?;
    Ok(success.as_bool().unwrap_or(true))
}

#[cfg(test)]
mod tests {
    use super::client_network;

    #[test]
    fn ipv6_clients_are_one_client_per_64_and_ipv4_per_address() {
        assert_eq!(client_network("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            client_network("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            client_network("2001:0db8:0001:0002::9")
        );
        assert_ne!(
            client_network("2001:db8:1:3::1"),
            client_network("2001:db8:1:2::1")
        );
        assert_eq!(client_network("203.0.113.7"), "203.0.113.7");
        assert_eq!(client_network("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(client_network(""), "");
    }
}
