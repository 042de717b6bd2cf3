//! What the worker tells the origin (DESIGN §5): the `cleave-assignments` RFC 8941 dictionary
//! and the HMAC that lets the origin trust it.

use hmac::{Hmac, Mac};
use sfv::{DictSerializer, KeyRef, StringRef};
use sha2::Sha256;

use crate::assign::Assignment;

/// Encodes assignments as an sf-dictionary of experiment key -> variant key (sf-string), e.g.
/// `checkout-button-color="treatment", hero="control"`. `None` when there are none (the header
/// is then omitted).
pub fn assignments_header(assignments: &[Assignment<'_>]) -> Option<String> {
    let mut dict = DictSerializer::new();
    for a in assignments {
        // Keys were validated against the key grammar, a subset of sf-key and sf-string; a key
        // that somehow is not is left out rather than mis-encoded.
        if let (Ok(key), Ok(value)) = (
            KeyRef::from_str(&a.experiment.key),
            StringRef::from_str(&a.variant.key),
        ) {
            let _params = dict.bare_item(key, value);
        }
    }
    dict.finish()
}

/// `hex(HMAC-SHA256(key, unit ++ "\n" ++ snapshot ++ "\n" ++ assignments))`, where `snapshot` is
/// the exact `cleave-snapshot` value and `assignments` the exact `cleave-assignments` value
/// (empty when absent).
pub fn sign(key: &[u8], unit: &str, snapshot: &str, assignments: &str) -> String {
    // HMAC accepts keys of any length, so this never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(unit.as_bytes());
    mac.update(b"\n");
    mac.update(snapshot.as_bytes());
    mac.update(b"\n");
    mac.update(assignments.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;
    use std::collections::BTreeMap;

    #[test]
    fn encodes_an_sf_dictionary_in_key_order() {
        let engine = Engine::decode(include_bytes!(
            "../../tests/fixtures/assignment-snapshot.json"
        ))
        .unwrap();
        let units = BTreeMap::from([("user".to_owned(), "u-2".to_owned())]);
        let attributes = BTreeMap::new();
        let only = ["split".to_owned(), "three-way".to_owned()].into();
        let subject = crate::Subject {
            only: Some(&only),
            ..crate::Subject::new(&units, &attributes, 1_800_000_000_000)
        };
        let header = assignments_header(&engine.assign(&subject)).unwrap();
        assert_eq!(header, r#"split="treatment", three-way="a""#);
    }

    #[test]
    fn no_assignments_means_no_header() {
        assert_eq!(assignments_header(&[]), None);
    }

    #[test]
    fn signature_matches_an_independent_hmac() {
        // Reference computed independently: python3 -c 'import hmac,hashlib;
        // print(hmac.new(b"k", b"u1\n7\na=\"b\"", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(b"k", "u1", "7", r#"a="b""#),
            "d69ad48dc3bd3574e94c749fbbf84905a18bcec225fa805a99cfff586a95b171"
        );
    }
}
