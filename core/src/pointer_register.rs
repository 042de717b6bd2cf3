//! The strongly consistent copy of an environment's pointer (the worker's `SnapshotPointer`
//! Durable Object holds one per environment) and the rules for moving it.
//!
//! Workers KV caches a key at each location for up to about a minute, so a pointer read from
//! KV can be that old. The register is written by the admin directly (a push) and read by
//! every isolate, so a publish, pause or rollback reaches every edge at the isolates' next
//! refresh. KV stays the durable store: the register adopts a pointer it reads from KV when
//! that pointer is newer than anything it ever held, so a push that never arrived still lands.
//!
//! `highest` is the highest version the register ever held. A stale KV read can offer a
//! version the admin has since rolled back from; it is adopted only when it is above
//! `highest`, so a rollback is never undone by a cache.

use serde::{Deserialize, Serialize};

use crate::pointer::{Pointer, Refusal};

/// What the register holds for one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    /// The pointer isolates follow; `None` until one is pushed or read from KV.
    pub pointer: Option<Pointer>,
    /// Highest version ever held.
    pub highest: u64,
    /// Whether the admin has ever pushed to it. Until then the register follows KV on every
    /// read; after, KV is only a safety net read every [`STORE_CHECK_MS`].
    #[serde(default)]
    pub pushed: bool,
}

/// How often a register the admin pushes to re-reads KV for a pointer it missed.
pub const STORE_CHECK_MS: u64 = 30_000;

impl Register {
    /// Takes a pointer the admin pushed: forward (or the same version re-signed), or back
    /// with a rollback marker covering the version held (`Pointer::may_replace`). The first
    /// push replaces whatever the register mirrored from KV, which nobody vouched for.
    ///
    /// # Errors
    /// [`Refusal::Downgrade`] or [`Refusal::StaleRollback`]; the register is unchanged.
    pub fn push(&mut self, offered: Pointer) -> Result<(), Refusal> {
        if self.pushed {
            offered.may_replace(self.held_version())?;
        }
        self.pushed = true;
        self.hold(offered);
        Ok(())
    }

    /// Takes a pointer read from KV. Until the first push, any pointer that differs; after,
    /// only news: a version above any ever held, the held
    /// version with a later expiry (a re-sign whose push was lost), or a rollback covering
    /// the held version from the highest one ever held. Returns whether it was taken.
    pub fn adopt_from_store(&mut self, offered: Pointer) -> bool {
        let take = match &self.pointer {
            None => true,
            Some(held) if *held == offered => false,
            // Never pushed to: a mirror of KV, judged by isolates exactly as KV would be.
            Some(_) if !self.pushed => true,
            Some(held) if offered.version > held.version => offered.version > self.highest,
            Some(held) if offered.version == held.version => {
                let later = |p: &Pointer| p.expires_ms().ok();
                later(&offered) > later(held)
            }
            // Back only from the newest version ever held: an older rollback still cached
            // (from before later publishes) is history, not news.
            Some(held) => {
                offered.may_replace(Some(held.version)).is_ok()
                    && offered.rollback_from >= Some(self.highest)
            }
        };
        if take {
            self.hold(offered);
        }
        take
    }

    /// Whether a read at `now_ms`, after the last KV check at `checked_ms`, should read KV.
    pub fn store_check_due(&self, checked_ms: Option<u64>, now_ms: u64) -> bool {
        !self.pushed || checked_ms.is_none_or(|at| now_ms.saturating_sub(at) >= STORE_CHECK_MS)
    }

    fn held_version(&self) -> Option<u64> {
        self.pointer.as_ref().map(|p| p.version)
    }

    fn hold(&mut self, pointer: Pointer) {
        self.highest = self.highest.max(pointer.version);
        self.pointer = Some(pointer);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(version: u64, rollback_from: Option<u64>) -> Pointer {
        Pointer {
            version,
            sha256: None,
            rollback_from,
            signature: None,
            binary: None,
            expires_at: None,
            expiry_signature: None,
        }
    }

    fn expiring(version: u64, expires_at: &str) -> Pointer {
        Pointer {
            expires_at: Some(expires_at.to_owned()),
            ..at(version, None)
        }
    }

    #[test]
    fn pushes_move_forward_and_back_only_with_a_covering_rollback() {
        let mut register = Register::default();
        register.push(at(5, None)).unwrap();
        assert!(matches!(
            register.push(at(4, None)),
            Err(Refusal::Downgrade {
                offered: 4,
                held: 5
            })
        ));
        register.push(at(3, Some(5))).unwrap();
        assert_eq!(register.pointer, Some(at(3, Some(5))));
        assert_eq!(register.highest, 5);
        // A rollback of a rollback names the version it leaves, below `highest`.
        register.push(at(2, Some(3))).unwrap();
        register.push(at(6, None)).unwrap();
        // Replaying the first rollback cannot undo v6.
        assert!(matches!(
            register.push(at(3, Some(5))),
            Err(Refusal::StaleRollback { .. })
        ));
        assert_eq!(register.pointer, Some(at(6, None)));
        assert!(register.pushed);
    }

    #[test]
    fn a_register_never_pushed_to_mirrors_the_store() {
        let mut register = Register::default();
        assert!(register.adopt_from_store(at(5, None)));
        assert!(register.adopt_from_store(at(4, None)));
        assert!(!register.adopt_from_store(at(4, None)));
        assert_eq!(register.pointer, Some(at(4, None)));
        assert_eq!(register.highest, 5);
        // What KV held (written by anyone) does not bind the admin's first push.
        assert!(register.adopt_from_store(at(9, None)));
        register.push(at(2, None)).unwrap();
        assert_eq!(register.pointer, Some(at(2, None)));
        assert!(register.push(at(1, None)).is_err());
    }

    #[test]
    fn a_stale_store_read_never_undoes_a_rollback() {
        let mut register = Register::default();
        register.push(at(5, None)).unwrap();
        register.push(at(3, Some(5))).unwrap();
        // The KV cache at the object's location still shows v5.
        assert!(!register.adopt_from_store(at(5, None)));
        assert_eq!(register.pointer, Some(at(3, Some(5))));
        // A publish whose push was lost is in KV as v6: newer than anything held.
        assert!(register.adopt_from_store(at(6, None)));
        assert_eq!(register.highest, 6);
        // An old rollback still cached is not news.
        assert!(!register.adopt_from_store(at(3, Some(5))));
    }

    #[test]
    fn a_store_read_takes_a_later_expiry_and_a_covering_rollback() {
        let mut register = Register::default();
        register.push(expiring(4, "2026-12-01T00:00:00Z")).unwrap();
        assert!(!register.adopt_from_store(expiring(4, "2026-11-30T00:00:00Z")));
        assert!(register.adopt_from_store(expiring(4, "2026-12-02T00:00:00Z")));
        assert!(register.adopt_from_store(at(2, Some(4))));
        // From v3, older than v4: a rollback made before v4 was published.
        assert!(!register.adopt_from_store(at(1, Some(3))));
        assert_eq!(register.pointer, Some(at(2, Some(4))));
    }

    #[test]
    fn the_store_is_read_every_time_until_the_first_push() {
        let mut register = Register::default();
        assert!(register.store_check_due(Some(1_000), 1_001));
        register.push(at(1, None)).unwrap();
        assert!(!register.store_check_due(Some(1_000), 1_001));
        assert!(register.store_check_due(Some(1_000), 1_000 + STORE_CHECK_MS));
        assert!(register.store_check_due(None, 0));
    }
}
