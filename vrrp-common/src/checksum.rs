//! RFC 1071 internet checksum, fed in pieces so a pseudo-header and a message need not be
//! contiguous. Straight-line folding and wrapping adds: no panics, no unbounded loops (eBPF).

/// One's complement sum in progress. Pieces may have odd lengths: a dangling byte is paired with
/// the first byte of the next piece, as if the pieces were one buffer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checksum {
    sum: u64,
    odd: Option<u8>,
}

impl Checksum {
    pub const fn new() -> Self {
        Self { sum: 0, odd: None }
    }

    #[must_use]
    pub fn update(mut self, bytes: &[u8]) -> Self {
        let mut i = 0;
        if let Some(hi) = self.odd.take() {
            match bytes.first() {
                Some(&lo) => {
                    self.add_word(u16::from_be_bytes([hi, lo]));
                    i = 1;
                }
                None => {
                    self.odd = Some(hi);
                    return self;
                }
            }
        }
        // An index bounded by the slice length, not an iterator: the eBPF verifier can bound the
        // former, but not an iterator's end-pointer comparison (it rejects the program).
        while let (Some(&hi), Some(&lo)) = (bytes.get(i), bytes.get(i + 1)) {
            self.add_word(u16::from_be_bytes([hi, lo]));
            i += 2;
        }
        if let Some(&last) = bytes.get(i) {
            self.odd = Some(last);
        }
        self
    }

    /// The checksum to put in the header: complement of the folded sum, odd byte zero-padded.
    /// Over data that already holds a correct checksum it is 0.
    pub fn finish(mut self) -> u16 {
        if let Some(hi) = self.odd.take() {
            self.add_word(u16::from_be_bytes([hi, 0]));
        }
        let mut s = (self.sum & 0xffff_ffff) + (self.sum >> 32);
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        !(s as u16)
    }

    fn add_word(&mut self, word: u16) {
        self.sum = self.sum.wrapping_add(u64::from(word));
    }
}

/// Checksum over `parts` taken as one buffer.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    parts
        .iter()
        .fold(Checksum::new(), |c, part| c.update(part))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the sum of these bytes is 0xddf2, so the checksum is !0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&[&data]), !0xddf2);
    }

    #[test]
    fn split_at_odd_offsets_equals_contiguous() {
        let data: [u8; 11] = [
            0x45, 0xc0, 0x00, 0x28, 0x12, 0x34, 0xab, 0xcd, 0xef, 0x01, 0x7f,
        ];
        let whole = checksum(&[&data]);
        assert_eq!(whole, 0x8e13);
        for cut in 0..=data.len() {
            let (a, b) = data.split_at(cut);
            assert_eq!(checksum(&[a, b]), whole, "cut at {cut}");
            assert_eq!(
                checksum(&[a, &[], b]),
                whole,
                "cut at {cut} with empty piece"
            );
        }
        // Odd length at the end: the last byte is padded with a zero low byte.
        assert_eq!(checksum(&[&[0xab]]), !0xab00);
    }

    #[test]
    fn carries_fold_back() {
        // 0xffff + 0x0001 = 0x1_0000, folds to 0x0001.
        assert_eq!(checksum(&[&[0xff, 0xff, 0x00, 0x01]]), !0x0001);
        assert_eq!(checksum(&[]), 0xffff);
    }
}
