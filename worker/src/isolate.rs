//! What happens once per isolate, before its first request or queue batch: the configuration
//! is read and the bindings telemetry and delivery write to are taken from `Env`. Both entry
//! points call [`start`]; nothing else binds or reads vars.

use std::cell::OnceCell;
use std::rc::Rc;

use worker::Env;

use crate::config::Config;

thread_local! {
    static CONFIG: OnceCell<Rc<Config>> = const { OnceCell::new() };
}

/// The isolate's configuration, starting the isolate on its first call.
pub fn start(env: &Env) -> Rc<Config> {
    CONFIG.with(|cell| {
        Rc::clone(cell.get_or_init(|| {
            crate::telemetry::bind(env);
            crate::delivery::bind(env);
            Rc::new(Config::from_env(env))
        }))
    })
}
