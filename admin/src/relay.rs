//! Pushing pointers to the worker's `SnapshotPointer` objects (`PUT /_cleave/v1/pointer`),
//! which every isolate reads at its refresh, so a publish, pause or rollback reaches every
//! location within the worker's refresh interval instead of KV's minute of caching.

use cleave_core::pointer::Pointer;

use crate::sink::PerEnvironment;

/// Where each environment's worker is and the token it takes pushes with.
#[derive(Debug, Clone)]
pub struct Relay {
    /// `CLEAVE_WORKER_URL`: one base URL, or one per environment.
    pub workers: PerEnvironment,
    /// `CLEAVE_PUBLISH_TOKEN`, the worker's secret of the same name.
    pub token: String,
}

impl Relay {
    /// Pushes `pointer` to the object of `env`.
    ///
    /// # Errors
    /// A message saying what the worker answered, or why it could not be reached.
    pub async fn push(&self, env: &str, pointer: &Pointer) -> Result<(), String> {
        let base = self.workers.for_environment(env)?.trim_end_matches('/');
        let url = format!("{base}/_cleave/v1/pointer");
        let response = reqwest::Client::new()
            .put(&url)
            .query(&[("env", env)])
            .bearer_auth(&self.token)
            .json(pointer)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("pushing the pointer to {url} failed: {e}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let said = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["meta"]["error"].as_str().map(str::to_owned))
            .unwrap_or(text);
        Err(format!(
            "the worker at {base} refused the pointer ({status}): {said}"
        ))
    }

    pub fn describe(&self) -> String {
        format!("pushed to {}", self.workers)
    }
}
