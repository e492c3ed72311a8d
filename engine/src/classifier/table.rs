//! The model's table from feature hash to weight row (its own module: the classifier's is long
//! enough).

/// Open addressing from feature hash to row, linear probing, at most half full. Lookups of
/// features the model never saw (most of a message's n-grams) end at the first empty slot.
///
/// A slot is 8 bytes, a 32-bit fingerprint of the hash and the row, so a probe is one memory
/// access. The slot is chosen by other bits of the hash than the fingerprint, so an unseen
/// feature is mistaken for a stored one only if it lands in the same short probe run *and* has
/// the same 32-bit fingerprint: about once in two billion lookups, and then it adds one small
/// weight row.
#[derive(Debug)]
pub(super) struct FeatureTable {
    /// (fingerprint, row); fingerprint 0 marks an empty slot.
    slots: Vec<(u32, u32)>,
    shift: u32,
}

impl FeatureTable {
    pub(super) fn new(hashes: &[u64]) -> FeatureTable {
        let capacity = (hashes.len() * 2).next_power_of_two().max(16);
        let mut table = FeatureTable {
            slots: vec![(0, 0); capacity],
            shift: 64 - capacity.trailing_zeros(),
        };
        let mask = capacity - 1;
        for (row, &hash) in hashes.iter().enumerate() {
            let (mut at, key) = table.place(hash);
            while table.slots[at].0 != 0 && table.slots[at].0 != key {
                at = (at + 1) & mask;
            }
            // Row counts stay far below u32::MAX: a row per distinct feature of the examples.
            table.slots[at] = (key, u32::try_from(row).unwrap_or(u32::MAX));
        }
        table
    }

    /// The home slot, from the high bits of a multiplicative mix (FNV's low bits are its
    /// weakest), and the fingerprint, from the hash's low 32 bits (never 0).
    #[inline]
    fn place(&self, hash: u64) -> (usize, u32) {
        let home = (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize;
        (home, (hash as u32).max(1))
    }

    #[inline]
    pub(super) fn get(&self, hash: u64) -> Option<usize> {
        let (mut at, key) = self.place(hash);
        let mask = self.slots.len() - 1;
        loop {
            match self.slots[at] {
                (0, _) => return None,
                (k, row) if k == key => return Some(row as usize),
                _ => at = (at + 1) & mask,
            }
        }
    }
}
