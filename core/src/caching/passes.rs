//! Pages the edge found uncacheable lately ("hit-for-pass", as Varnish calls it). Looking up
//! a page the origin never lets the edge keep costs a cache round trip on every request for
//! nothing; once a page's response is not storable, its lookups are skipped for a while and
//! the request goes straight to the origin. A storable answer ends the pass at once, so a
//! page that becomes cacheable is stored again on its next request.

use std::collections::HashMap;

/// How long a page stays on the list after an uncacheable response.
pub const PASS_MS: i64 = 60_000;
/// Pages remembered at most; past it, the entry that expires first goes.
pub const MAX_PASSES: usize = 1024;

/// Per-isolate memory of uncacheable pages, keyed by URL (not by assignment vector: whether a
/// page may be kept is the origin's rule for the page).
#[derive(Debug, Default)]
pub struct Passes {
    until: HashMap<String, i64>,
}

impl Passes {
    /// Whether `url` is on the list at `now_ms`: its lookup is skipped.
    pub fn passes(&self, url: &str, now_ms: i64) -> bool {
        self.until.get(url).is_some_and(|&until| now_ms < until)
    }

    /// What the origin's response for `url` said: a storable one takes the page off the
    /// list, any other puts it on for [`PASS_MS`].
    pub fn learn(&mut self, url: &str, storable: bool, now_ms: i64) {
        if storable {
            self.until.remove(url);
            return;
        }
        if self.until.len() >= MAX_PASSES && !self.until.contains_key(url) {
            self.until.retain(|_, until| now_ms < *until);
            if self.until.len() >= MAX_PASSES {
                let soonest = self
                    .until
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(key, _)| key.clone());
                if let Some(key) = soonest {
                    self.until.remove(&key);
                }
            }
        }
        self.until.insert(url.to_owned(), now_ms + PASS_MS);
    }

    /// Pages on the list, expired or not.
    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncacheable_page_passes_until_it_expires_or_turns_storable() {
        let mut passes = Passes::default();
        assert!(!passes.passes("https://a/p", 0));
        passes.learn("https://a/p", false, 1_000);
        assert!(passes.passes("https://a/p", 1_000));
        assert!(passes.passes("https://a/p", 1_000 + PASS_MS - 1));
        assert!(!passes.passes("https://a/p", 1_000 + PASS_MS));
        assert!(
            !passes.passes("https://a/other", 1_000),
            "one page's pass is not another's"
        );
        passes.learn("https://a/p", false, 2_000);
        passes.learn("https://a/p", true, 3_000);
        assert!(
            !passes.passes("https://a/p", 3_000),
            "a storable answer ends the pass"
        );
    }

    #[test]
    fn the_list_stays_bounded_and_keeps_the_newest() {
        let mut passes = Passes::default();
        for i in 0..MAX_PASSES + 10 {
            passes.learn(&format!("https://a/{i}"), false, i64::try_from(i).unwrap());
        }
        assert_eq!(passes.len(), MAX_PASSES);
        let newest = format!("https://a/{}", MAX_PASSES + 9);
        assert!(passes.passes(&newest, 0));
        assert!(
            !passes.passes("https://a/0", 0),
            "the entry expiring first made room"
        );
    }
}
