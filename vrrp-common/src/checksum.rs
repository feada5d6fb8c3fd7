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

/// Sum of the IPv6 pseudo-header (RFC 8200 §8.1) that VRRP and ICMPv6 checksums cover: source,
/// destination (the packet's own: a group, or the peer for unicast), the 32-bit upper-layer
/// length, three zero bytes and the next header.
pub fn pseudo_header_v6(src: [u8; 16], dst: [u8; 16], len: u32, next_header: u8) -> Checksum {
    Checksum::new()
        .update(&src)
        .update(&dst)
        .update(&len.to_be_bytes())
        .update(&[0, 0, 0, next_header])
}

/// Checksum over `parts` taken as one buffer.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    parts
        .iter()
        .fold(Checksum::new(), |c, part| c.update(part))
        .finish()
}

/// Bytes one step of [`sum_zero_padded`] adds, straight-line: the eBPF verifier walks the rest
/// of the program once for every step after which the loop may end, so steps are few and wide.
pub const SUM_STEP: usize = 32;

/// The 16-bit words of `buf[..end]` added up, not folded; `buf` holds zeros from `end` to the
/// next multiple of [`SUM_STEP`] (the caller clears them). Written for the kernel program: a
/// constant bound, no branch inside a step, the loop ending only between steps (a bound or a
/// mask per word would make the verifier fork on every word).
pub fn sum_zero_padded<const N: usize>(buf: &[u8; N], end: usize) -> u64 {
    let mut sum = 0u64;
    let mut base = 0;
    while base + SUM_STEP <= N && base < end {
        let mut k = 0;
        while k < SUM_STEP {
            sum += u64::from(u16::from_be_bytes([buf[base + k], buf[base + k + 1]]));
            k += 2;
        }
        base += SUM_STEP;
    }
    sum
}

/// The first `WORDS` 16-bit words of `buf`, added up: a fixed-length prefix, straight-line.
pub fn sum_prefix<const WORDS: usize, const N: usize>(buf: &[u8; N]) -> u64 {
    let mut sum = 0u64;
    let mut i = 0;
    while i < WORDS {
        sum += u64::from(u16::from_be_bytes([buf[2 * i], buf[2 * i + 1]]));
        i += 1;
    }
    sum
}

/// Whether a sum (over data holding its own checksum) proves the data intact: it folds to
/// 0xffff, as [`Checksum::finish`] gives 0.
pub fn folds_to_valid(sum: u64) -> bool {
    let mut s = (sum & 0xffff_ffff) + (sum >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s == 0xffff
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
    fn sums_over_zero_padded_buffers_equal_checksum() {
        let mut data = [0u8; 3 * SUM_STEP];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        for end in [0, 2, 20, 32, 34, 56, 64, 96] {
            let mut buf = [0u8; 4 * SUM_STEP];
            buf[..end].copy_from_slice(&data[..end]);
            let want = Checksum::new().update(&data[..end]).finish();
            let sum = sum_zero_padded(&buf, end);
            assert_eq!(Checksum { sum, odd: None }.finish(), want, "..{end}");
        }
        let sum = sum_prefix::<10, { 3 * SUM_STEP }>(&data);
        let want = Checksum::new().update(&data[..20]).finish();
        assert_eq!(Checksum { sum, odd: None }.finish(), want);
    }

    #[test]
    fn folds_to_valid_exactly_when_finish_is_zero() {
        for sum in [
            0u64,
            0xffff,
            0x1_fffe,
            0xffff_0000,
            0x2_0000_fffd,
            12_345_678_901,
        ] {
            let finished = Checksum { sum, odd: None }.finish();
            assert_eq!(folds_to_valid(sum), finished == 0, "{sum:#x}");
        }
    }

    #[test]
    fn carries_fold_back() {
        // 0xffff + 0x0001 = 0x1_0000, folds to 0x0001.
        assert_eq!(checksum(&[&[0xff, 0xff, 0x00, 0x01]]), !0x0001);
        assert_eq!(checksum(&[]), 0xffff);
    }
}
