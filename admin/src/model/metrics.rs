//! The closed vocabularies of metrics and results: what a metric measures, which way is good,
//! the part it plays in an experiment, and what a comparison concludes. Stored and sent as
//! the lower-case words; compared as types everywhere else.

use serde::Serialize;

/// An enum stored as text: its words, `as_str`, `parse` and the message for a wrong word.
macro_rules! words {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
        #[serde(rename_all = "lowercase")]
        #[sqlx(type_name = "text", rename_all = "lowercase")]
        pub enum $name {
            $($variant),+
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }

            /// The value a word names; `None` for any other text.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }

            /// What a request that sent `text` is told: the words it may use.
            pub fn refusal(text: &str) -> String {
                let words: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                let (last, rest) = words.split_last().unwrap_or((&"", &[]));
                let choices = if rest.is_empty() {
                    (*last).to_owned()
                } else {
                    format!("{} or {last}", rest.join(", "))
                };
                format!("{text:?}: use {choices}")
            }
        }
    };
}

words! {
    /// What a metric counts per unit: whether it happened, the sum of its values, or the sum
    /// of one event's values over another's (a ratio).
    MetricKind { Conversion => "conversion", Continuous => "continuous", Ratio => "ratio" }
}

words! {
    /// Which way a metric is good.
    Direction { Increase => "increase", Decrease => "decrease" }
}

words! {
    /// The part a metric plays in an experiment: primary and secondary metrics are corrected
    /// as one family; guardrails are judged alone and can pause the experiment.
    MetricRole { Primary => "primary", Secondary => "secondary", Guardrail => "guardrail" }
}

words! {
    /// What a comparison to control concludes, by the experiment's [`Decision`] and the
    /// metric's direction.
    Verdict { Better => "better", Worse => "worse", Inconclusive => "inconclusive" }
}

words! {
    /// Which reading sets the verdicts of an experiment's primary and secondary metrics: the
    /// always-valid sequential test, or the Bayesian chance to beat control (at least
    /// `1 - alpha` better, or at most `alpha`, for `worse`). Guardrails always use the
    /// sequential test.
    Decision { Sequential => "sequential", Bayesian => "bayesian" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_refusals_name_every_choice() {
        for role in MetricRole::ALL {
            assert_eq!(MetricRole::parse(role.as_str()), Some(*role));
        }
        assert_eq!(MetricKind::parse("Conversion"), None);
        assert_eq!(
            MetricRole::refusal("main"),
            "\"main\": use primary, secondary or guardrail"
        );
        assert_eq!(Direction::refusal("up"), "\"up\": use increase or decrease");
        assert_eq!(
            serde_json::to_value(Verdict::Inconclusive).unwrap(),
            "inconclusive"
        );
    }
}
