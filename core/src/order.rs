//! Sorting and ordered collections with a single copy of the sort in the wasm bundle. std's
//! sorts are generic over the element and the comparator, and `collect()` into a `BTreeMap`,
//! a `BTreeSet` or a JSON object sorts its input first, so every such call site used to add
//! its own 5-8 KB of sort code to the worker. Here every ordering sorts indices through one
//! comparator type, and ordered collections are built by inserting.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// Below this many items an insertion sort is quicker than sorting indices, and small.
const SHORT: usize = 16;

/// Sorts `items` stably by `cmp`, as `slice::sort_by` does.
pub fn sort_by<T>(items: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    if items.len() <= SHORT {
        for end in 1..items.len() {
            let mut at = end;
            while at > 0 && cmp(&items[at - 1], &items[at]) == Ordering::Greater {
                items.swap(at - 1, at);
                at -= 1;
            }
        }
        return;
    }
    let order = {
        let items: &[T] = items;
        sorted_indices(items.len(), &mut |a, b| cmp(&items[a], &items[b]))
    };
    permute(items, order);
}

/// Sorts `items` stably in their natural order.
pub fn sort<T: Ord>(items: &mut [T]) {
    sort_by(items, T::cmp);
}

/// `0..n` ordered stably by `cmp`, for callers that sort indices anyway.
pub fn indices_by(n: usize, mut cmp: impl FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    sorted_indices(n, &mut cmp)
}

/// The one instance of std's sort: `0..n` ordered by `cmp` on indices.
fn sorted_indices(n: usize, cmp: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| cmp(*a, *b));
    order
}

/// Moves `items[order[i]]` to `i` for every `i`, following each cycle of the permutation.
fn permute<T>(items: &mut [T], mut order: Vec<usize>) {
    for start in 0..items.len() {
        let mut at = start;
        loop {
            let from = order.get(at).copied().unwrap_or(start);
            if let Some(slot) = order.get_mut(at) {
                *slot = at;
            }
            if from == start {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
}

/// `pairs` as an ordered map; a later pair replaces an earlier one with the same key, as
/// `collect()` does.
pub fn map_of<K: Ord, V>(pairs: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut map = BTreeMap::new();
    for (k, v) in pairs {
        map.insert(k, v);
    }
    map
}

/// The pairs as an ordered map, or the first error.
///
/// # Errors
/// The first `Err` among `pairs`.
pub fn try_map_of<K: Ord, V, E>(
    pairs: impl IntoIterator<Item = Result<(K, V), E>>,
) -> Result<BTreeMap<K, V>, E> {
    let mut map = BTreeMap::new();
    for pair in pairs {
        let (k, v) = pair?;
        map.insert(k, v);
    }
    Ok(map)
}

/// `items` as an ordered set.
pub fn set_of<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeSet<T> {
    let mut set = BTreeSet::new();
    for item in items {
        set.insert(item);
    }
    set
}

/// `pairs` as a JSON object (serde_json's map is a `BTreeMap`, which `collect()` would sort).
pub fn object_of(
    pairs: impl IntoIterator<Item = (String, serde_json::Value)>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        map.insert(k, v);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sorts_as_the_standard_stable_sort(items in proptest::collection::vec((0u8..8, any::<u16>()), 0..60)) {
            let mut ours = items.clone();
            let mut theirs = items;
            sort_by(&mut ours, |a, b| a.0.cmp(&b.0));
            theirs.sort_by_key(|a| a.0);
            prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn builds_what_collect_builds(pairs in proptest::collection::vec((0u8..16, any::<u32>()), 0..100)) {
            let collected: BTreeMap<u8, u32> = pairs.iter().copied().collect();
            prop_assert_eq!(map_of(pairs.iter().copied()), collected);
            let keys: BTreeSet<u8> = pairs.iter().map(|p| p.0).collect();
            prop_assert_eq!(set_of(pairs.iter().map(|p| p.0)), keys);
        }
    }

    #[test]
    fn the_first_error_stops_the_map() {
        let pairs = [Ok((1, "a")), Err("bad"), Ok((2, "b"))];
        assert_eq!(try_map_of(pairs), Err("bad"));
        assert_eq!(
            try_map_of([Ok::<_, ()>((2, "b")), Ok((1, "a"))]).map(|m| m.len()),
            Ok(2)
        );
    }
}
