//! Each variant's entry in a decide response (`{"experiment_id", "variant", "variant_id",
//! "payload"}`), serialised once per snapshot on first use and copied verbatim after that:
//! re-serialising payloads on every request was the largest cost of a response.

use std::cell::OnceCell;

use cleave_core::{Assignment, Engine};
use serde::Serialize;
use serde_json::value::RawValue;

#[derive(Serialize)]
struct AssignmentView<'a> {
    experiment_id: &'a str,
    variant: &'a str,
    variant_id: &'a str,
    payload: &'a RawValue,
}

/// One lazily filled cell per variant of the snapshot.
#[derive(Debug, Default)]
pub struct AssignmentViews {
    /// Index of each experiment's first variant in `cells`.
    starts: Vec<usize>,
    cells: Vec<OnceCell<Box<RawValue>>>,
}

impl AssignmentViews {
    pub fn new(engine: &Engine) -> Self {
        let mut starts = Vec::new();
        let mut total = 0;
        for exp in &engine.snapshot().experiments {
            starts.push(total);
            total += exp.variants.len();
        }
        Self {
            starts,
            cells: std::iter::repeat_with(OnceCell::new).take(total).collect(),
        }
    }

    /// The serialised entry for `a`, an assignment made by the engine these views were built
    /// for.
    ///
    /// # Errors
    /// Serialisation failure (none is expected: the values came from JSON).
    pub fn get(&self, a: &Assignment<'_>) -> serde_json::Result<&RawValue> {
        let cell = self
            .starts
            .get(a.experiment_index)
            .and_then(|start| self.cells.get(start + a.variant_index));
        let Some(cell) = cell else {
            return Err(serde::ser::Error::custom(
                "assignment from another snapshot",
            ));
        };
        if let Some(raw) = cell.get() {
            return Ok(raw);
        }
        let raw = render(a)?;
        Ok(cell.get_or_init(|| raw))
    }
}

fn render(a: &Assignment<'_>) -> serde_json::Result<Box<RawValue>> {
    serde_json::value::to_raw_value(&AssignmentView {
        experiment_id: &a.experiment.id,
        variant: &a.variant.key,
        variant_id: &a.variant.id,
        payload: a.variant.payload.as_raw(),
    })
}
