//! What a run counts: a latency histogram and, per receiving client, the
//! next sequence number it expects from each sender.
//!
//! [`Histogram`] is log-linear: exact below 1024 µs, then 128 sub-buckets per
//! power of two (under 0.8 % error), so recording is an index computation and
//! an increment, and merging the histograms of thousands of clients is
//! cheap. The maximum is kept exactly.
//!
//! [`Tally`] keeps, per sender a client hears, the next `seq` it expects.
//! Both servers promise one sender's messages in order, so a `seq` above the
//! expected one leaves a gap, and one below it is a duplicate unless it
//! fills a gap: then it arrived late (reordered), and counts once. Losses
//! are counted at the end as expected minus unique deliveries, so a
//! reordering is reported as such, never as a loss plus a duplicate.
//!
//! [`IdOrder`] keeps, per receiving client of Charla, the room id of the
//! last delivery: Charla promises every member of a room every message in id
//! order, ids growing by exactly 1, on every node of a cluster, and in the
//! load generator's rooms every message is one of its own.

/// Values below this are recorded exactly (one bucket per microsecond).
const LINEAR_LIMIT: u64 = 1024;
/// Sub-buckets per power of two above [`LINEAR_LIMIT`].
const SUB_BUCKET_BITS: u32 = 7;
const SUB_BUCKETS: usize = 1 << SUB_BUCKET_BITS;
/// Powers of two covered above [`LINEAR_LIMIT`]: up to 2^64 µs.
const OCTAVES: usize = 64 - 10;

/// A latency histogram in microseconds.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; LINEAR_LIMIT as usize + OCTAVES * SUB_BUCKETS],
            total: 0,
            max: 0,
        }
    }

    fn index(value: u64) -> usize {
        if value < LINEAR_LIMIT {
            return value as usize;
        }
        let octave = 63 - value.leading_zeros(); // at least 10
        let sub = (value >> (octave - SUB_BUCKET_BITS)) as usize & (SUB_BUCKETS - 1);
        LINEAR_LIMIT as usize + (octave as usize - 10) * SUB_BUCKETS + sub
    }

    /// The largest value that falls into bucket `index`.
    fn upper_bound(index: usize) -> u64 {
        if index < LINEAR_LIMIT as usize {
            return index as u64;
        }
        let rest = index - LINEAR_LIMIT as usize;
        let octave = (rest / SUB_BUCKETS) as u32 + 10;
        let sub = (rest % SUB_BUCKETS) as u64;
        let width = 1u64 << (octave - SUB_BUCKET_BITS);
        (1u64 << octave) + sub * width + (width - 1)
    }

    pub fn record(&mut self, value: u64) {
        self.counts[Histogram::index(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += *theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), rounded up to its bucket's bound;
    /// `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Histogram::upper_bound(index).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// Gaps wider than this are counted but their `seq`s are not remembered: a
/// late arrival from such a gap counts as a duplicate. Keeps a broken run
/// from filling memory.
const MAX_REMEMBERED_GAP: u64 = 65_536;

/// What one delivery was, to the client that heard it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heard {
    /// The next `seq`, or one past a gap.
    New,
    /// A `seq` skipped earlier, now filled: new, but out of order.
    Late,
    /// A `seq` already heard.
    Duplicate,
}

/// Per receiving client: the next `seq` expected from each sender.
///
/// Sender ids are small and dense (0, 1, 2, ...), so the expectations live
/// in a vector indexed by sender, 0 meaning "not heard yet". The `seq`s
/// skipped over are remembered per sender only once a gap appears, so the
/// in-order path touches nothing else.
#[derive(Debug, Default)]
pub struct Tally {
    next: Vec<u64>,
    skipped: Vec<std::collections::BTreeSet<u64>>,
    /// Deliveries seen, duplicates included.
    pub received: u64,
    /// Deliveries whose `seq` was already seen.
    pub duplicated: u64,
    /// `seq`s skipped over and not (yet) heard: a gap while connected.
    pub gaps: u64,
    /// Deliveries that filled a gap: heard after a later `seq` of theirs.
    pub reordered: u64,
}

impl Tally {
    fn slot(&mut self, sender: u32) -> &mut u64 {
        let index = sender as usize;
        if index >= self.next.len() {
            self.next.resize(index + 1, 0);
        }
        &mut self.next[index]
    }

    /// Records one delivery from `sender` with `seq` (from 1).
    pub fn record(&mut self, sender: u32, seq: u64) -> Heard {
        self.received += 1;
        let next = self.slot(sender);
        if *next == 0 {
            // The first message heard from this sender: a client that
            // joined mid-run starts wherever the room is.
            *next = seq + 1;
            Heard::New
        } else if seq == *next {
            *next += 1;
            Heard::New
        } else if seq > *next {
            let skipped = *next..seq;
            *next = seq + 1;
            self.gaps += skipped.end - skipped.start;
            if skipped.end - skipped.start <= MAX_REMEMBERED_GAP {
                self.skipped_of(sender).extend(skipped);
            }
            Heard::New
        } else if self.skipped_of(sender).remove(&seq) {
            self.gaps -= 1;
            self.reordered += 1;
            Heard::Late
        } else {
            self.duplicated += 1;
            Heard::Duplicate
        }
    }

    fn skipped_of(&mut self, sender: u32) -> &mut std::collections::BTreeSet<u64> {
        let index = sender as usize;
        if index >= self.skipped.len() {
            self.skipped.resize_with(index + 1, Default::default);
        }
        &mut self.skipped[index]
    }

    /// The first `seq` this client must hear from `sender` when it was in the
    /// room from the start.
    pub fn expect_from_start(&mut self, sender: u32) {
        *self.slot(sender) = 1;
    }
}

/// Per receiving client (of one room): the room id of the last delivery.
#[derive(Debug, Default)]
pub struct IdOrder {
    last: Option<u64>,
    /// Deliveries whose id was not the previous delivery's plus one (a gap,
    /// a repeat or a reordering).
    pub out_of_order: u64,
}

impl IdOrder {
    /// Records a delivery with room id `id`; answers whether it followed the
    /// previous one (the first always does).
    pub fn record(&mut self, id: u64) -> bool {
        let follows = self.last.is_none_or(|last| id == last + 1);
        if !follows {
            self.out_of_order += 1;
        }
        self.last = Some(id);
        follows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut histogram = Histogram::new();
        for value in 1..=100_000u64 {
            histogram.record(value);
        }
        for (q, exact) in [(0.5, 50_000.0), (0.99, 99_000.0), (1.0, 100_000.0)] {
            let got = histogram.quantile(q).unwrap() as f64;
            assert!((got - exact).abs() / exact < 0.01, "q{q}: {got} vs {exact}");
        }
        assert_eq!(histogram.max(), 100_000);
        assert_eq!(histogram.quantile(0.0), Some(1));
        let mut small = Histogram::new();
        small.record(7);
        assert_eq!(small.quantile(0.99), Some(7));
        let mut merged = Histogram::new();
        merged.merge(&histogram);
        merged.merge(&small);
        assert_eq!(merged.count(), 100_001);
        assert!(Histogram::new().quantile(0.5).is_none());
    }

    #[test]
    fn bucket_bounds_cover_their_values() {
        for value in [0, 1, 1023, 1024, 1025, 5000, 1 << 20, (1 << 40) + 12_345] {
            let index = Histogram::index(value);
            assert!(Histogram::upper_bound(index) >= value, "{value}");
            if index > 0 {
                assert!(Histogram::upper_bound(index - 1) < value, "{value}");
            }
        }
    }

    #[test]
    fn tallies_find_duplicates_and_gaps() {
        let mut tally = Tally::default();
        tally.expect_from_start(1);
        assert_eq!(tally.record(1, 1), Heard::New);
        assert_eq!(tally.record(1, 2), Heard::New);
        assert_eq!(tally.record(1, 2), Heard::Duplicate);
        assert_eq!(tally.record(1, 5), Heard::New);
        assert_eq!(tally.record(2, 40), Heard::New);
        assert_eq!(tally.record(2, 41), Heard::New);
        assert_eq!((tally.received, tally.duplicated, tally.gaps), (6, 1, 2));
    }

    #[test]
    fn a_late_delivery_fills_its_gap_once() {
        let mut tally = Tally::default();
        tally.expect_from_start(0);
        assert_eq!(tally.record(0, 1), Heard::New);
        assert_eq!(tally.record(0, 3), Heard::New);
        assert_eq!(tally.gaps, 1);
        assert_eq!(tally.record(0, 2), Heard::Late);
        assert_eq!(tally.record(0, 2), Heard::Duplicate);
        assert_eq!(tally.record(0, 4), Heard::New);
        assert_eq!(
            (
                tally.received,
                tally.duplicated,
                tally.gaps,
                tally.reordered
            ),
            (5, 1, 0, 1)
        );
    }

    #[test]
    fn id_order_wants_each_id_once_and_in_turn() {
        let mut order = IdOrder::default();
        assert!(order.record(40));
        assert!(order.record(41));
        assert!(!order.record(41));
        assert!(order.record(42));
        assert!(!order.record(44));
        assert!(!order.record(43));
        assert_eq!(order.out_of_order, 3);
    }
}
