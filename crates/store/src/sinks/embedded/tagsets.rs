//! The writer's cache of the tag sets it has seen: their store ids and
//! field lists, and the quickest way to find a point's.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use model::Point;

use crate::fxhash::{BuildFx, FxHasher};

/// The tag-set cache. Producers send the same tag sets in the same order
/// every cycle (a sampler walks its collectors in turn), so the tag set
/// that followed the previous point's last time is tried first: a hit
/// costs one comparison instead of hashing every tag (which was a third of
/// the writer's time in profiles). A miss falls back to the hash map.
#[derive(Default)]
pub(super) struct TagSets {
    pub(super) sets: Vec<TagSet>,
    /// Hash of (measurement, tags) to the indices of tag sets with that hash.
    by_hash: HashMap<u64, Vec<usize>, BuildFx>,
    /// Per tag set, the one that came after it last time (usize::MAX: none).
    next_of: Vec<usize>,
    /// The previous point's tag set.
    prev: Option<usize>,
}

impl TagSets {
    pub(super) fn clear(&mut self) {
        *self = TagSets::default();
    }

    /// The index of the point's tag set, if known.
    pub(super) fn find(&mut self, point: &Point) -> Option<usize> {
        let guess = self.prev.map(|p| self.next_of[p]).filter(|&g| g != usize::MAX);
        let found = match guess {
            Some(g) if self.sets[g].is(point) => Some(g),
            _ => {
                let key = tagset_hash(&point.measurement, &point.tags);
                let sets = &self.sets;
                self.by_hash
                    .get(&key)
                    .and_then(|ids| ids.iter().copied().find(|&i| sets[i].is(point)))
            }
        };
        if let Some(i) = found {
            self.follow(i);
        }
        found
    }

    pub(super) fn add(&mut self, set: TagSet) -> usize {
        let i = self.sets.len();
        self.by_hash
            .entry(tagset_hash(&set.measurement, &set.tags))
            .or_default()
            .push(i);
        self.sets.push(set);
        self.next_of.push(usize::MAX);
        self.follow(i);
        i
    }

    /// Records that `i` came after the previous point's tag set.
    fn follow(&mut self, i: usize) {
        if let Some(p) = self.prev {
            self.next_of[p] = i;
        }
        self.prev = Some(i);
    }
}

pub(super) struct TagSet {
    pub(super) measurement: String,
    pub(super) tags: BTreeMap<String, String>,
    pub(super) id: i64,
    pub(super) fields: Vec<String>,
}

impl TagSet {
    fn is(&self, point: &Point) -> bool {
        self.measurement == point.measurement && self.tags == point.tags
    }
}

fn tagset_hash(measurement: &str, tags: &BTreeMap<String, String>) -> u64 {
    let mut h = FxHasher::default();
    measurement.hash(&mut h);
    tags.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guessed_tag_set_is_used_only_when_it_is_the_point_s() {
        let point = |node: &str| Point::new("m", 0).tag("node", node);
        let set = |node: &str, id| TagSet {
            measurement: "m".into(),
            tags: point(node).tags,
            id,
            fields: Vec::new(),
        };
        let mut sets = TagSets::default();
        for (i, node) in ["a", "b", "c"].into_iter().enumerate() {
            assert_eq!(sets.find(&point(node)), None);
            assert_eq!(sets.add(set(node, i as i64)), i);
        }
        // The same order again hits the guesses; a new order (a, c, b) and
        // a point of another measurement must not take the guess.
        for node in ["a", "b", "c", "a", "c", "b", "b"] {
            let i = sets.find(&point(node)).expect("known");
            assert_eq!(sets.sets[i].tags["node"], node);
        }
        assert_eq!(sets.find(&Point::new("other", 0).tag("node", "b")), None);
    }
}
