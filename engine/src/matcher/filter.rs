//! A quick "certainly not in the set" for the negation words, so that the negation check asks
//! its hash sets about few of a message's words (its own module: the matcher's is long enough).

/// A quick "certainly not in the set" for a set of words: the lengths (below 64) and first
/// bytes its words have, and a bit per (first byte, last byte, length) mix. A negation check
/// asked two hash lookups of every word of a message with a hit, about 1,300 instructions a
/// decision (session 13); by length and first byte alone, most words of the benchmark's
/// messages still passed (13 lookups a decision, session 15), since the negators and enders
/// of two languages cover most lengths and many first letters.
#[derive(Debug, Default)]
pub(super) struct WordFilter {
    lengths: u64,
    first_bytes: [u64; 4],
    mixes: [u64; 8],
}

impl WordFilter {
    pub(super) fn new<'w>(words: impl Iterator<Item = &'w String>) -> WordFilter {
        let mut filter = WordFilter::default();
        for word in words {
            let len = word.len();
            filter.lengths |= if len < 64 { 1 << len } else { 1 << 63 };
            if let Some(&b) = word.as_bytes().first() {
                filter.first_bytes[usize::from(b / 64)] |= 1 << (b % 64);
            }
            let mix = WordFilter::mix(word);
            filter.mixes[mix / 64] |= 1 << (mix % 64);
        }
        filter
    }

    /// One of 512 bits, from the word's first and last byte and its length (words of 63 bytes
    /// or more as one length, as in `lengths`).
    #[inline]
    fn mix(word: &str) -> usize {
        let bytes = word.as_bytes();
        let (first, last) = (bytes.first().copied(), bytes.last().copied());
        let key = u32::from(first.unwrap_or(0)) << 16
            | u32::from(last.unwrap_or(0)) << 8
            | word.len().min(63) as u32;
        (key.wrapping_mul(0x9e37_79b9) >> 23) as usize
    }

    /// False only for a word the set cannot have (words of 63 bytes or more share one bit).
    #[inline]
    pub(super) fn may_have(&self, word: &str) -> bool {
        let len = word.len().min(63);
        self.lengths & (1 << len) != 0
            && word
                .as_bytes()
                .first()
                .is_none_or(|&b| self.first_bytes[usize::from(b / 64)] & (1 << (b % 64)) != 0)
            && {
                let mix = WordFilter::mix(word);
                self.mixes[mix / 64] & (1 << (mix % 64)) != 0
            }
    }
}
