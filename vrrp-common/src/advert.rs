//! VRRP advertisements over IPv4 and IPv6: decode with the RFC receive checks, encode
//! byte-identical to keepalived.
//!
//! Receive is two steps: [`decode_ipv4`] / [`decode_ipv6`] run the checks that need nothing but
//! the packet (the XDP program can run them on a stack copy: slice code only, no panics), then
//! [`Advert::check`] runs the ones that need an instance's configuration.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum::{folds_to_valid, pseudo_header_v6, sum_prefix, sum_zero_padded, Checksum};
use crate::error::{DecodeError, EncodeError};
use crate::wire::{
    header_at, Ipv4Hdr, Ipv6Hdr, VrrpHdr, IPPROTO_VRRP, IPV4_HDR_LEN, IPV6_HDR_LEN, MAX_VRRP_ADDRS,
    VRRP_AUTH_AH, VRRP_AUTH_DATA_LEN, VRRP_AUTH_NONE, VRRP_AUTH_PASS, VRRP_HDR_LEN, VRRP_TOS,
    VRRP_TTL, VRRP_TYPE_ADVERT, VRRP_VERSION_2, VRRP_VERSION_3,
};
use crate::Version;

/// VRRPv2 authentication (RFC 3768 §5.3.6). v3 adverts always decode as [`Auth::None`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    /// Simple text password: the 8 auth data bytes.
    Pass([u8; VRRP_AUTH_DATA_LEN]),
    /// Any other type on the wire (2 = IP AH, the rest undefined).
    Other(u8),
}

impl Auth {
    /// A configured password as keepalived compares it: zero-padded or truncated to 8 bytes.
    pub fn password(password: &[u8]) -> Self {
        let mut data = [0; VRRP_AUTH_DATA_LEN];
        for (d, p) in data.iter_mut().zip(password) {
            *d = *p;
        }
        Self::Pass(data)
    }

    pub const fn type_code(&self) -> u8 {
        match self {
            Self::None => VRRP_AUTH_NONE,
            Self::Pass(_) => VRRP_AUTH_PASS,
            Self::Other(code) => *code,
        }
    }
}

/// What a v3-over-IPv4 checksum covers. keepalived and FRR prepend the IPv4 pseudo-header (as for
/// v3 over IPv6); RFC 9568 §5.2.8 and keepalived's `v3_checksum_as_v2` cover the message only.
/// v2 always covers the message only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumForm {
    MessageOnly,
    WithPseudoHeader,
}

/// A decoded advert that passed the structural checks; it borrows the packet for its addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advert<'a> {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// v2: seconds × 100; v3: Max Advertise Interval as sent.
    pub interval_cs: u16,
    pub auth: Auth,
    /// IPv4: the sender's primary address; IPv6: its link-local address.
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or Hop Limit (IPv6).
    pub ttl: u8,
    /// TOS (IPv4) or Traffic Class (IPv6).
    pub tos: u8,
    /// IPv4 identification; 0 over IPv6, which has none outside fragments.
    pub ip_id: u16,
    /// The form the checksum matched; when both match, [`ChecksumForm::WithPseudoHeader`]. `None`
    /// from the `_fields` decoders, which do not verify checksums.
    pub checksum_form: Option<ChecksumForm>,
    /// The address list, in the family of the IP header; the other is empty.
    v4: &'a [[u8; 4]],
    v6: &'a [[u8; 16]],
}

/// The advertised addresses, in packet order.
#[derive(Clone, Debug)]
pub struct Addrs<'a> {
    v4: core::slice::Iter<'a, [u8; 4]>,
    v6: core::slice::Iter<'a, [u8; 16]>,
}

impl Iterator for Addrs<'_> {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        match self.v4.next() {
            Some(a) => Some(IpAddr::V4(Ipv4Addr::from_octets(*a))),
            None => self
                .v6
                .next()
                .map(|a| IpAddr::V6(Ipv6Addr::from_octets(*a))),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.v4.len() + self.v6.len();
        (n, Some(n))
    }
}

impl ExactSizeIterator for Addrs<'_> {}

/// An address list as the kernel program compares it with ours: its length and an
/// order-independent digest (a sum of mixed addresses, so a list with the same addresses in
/// another order matches and one with a duplicate instead of ours does not). One address at a
/// time, for the kernel's `bpf_loop`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddrList {
    pub count: u8,
    pub digest: u64,
}

impl AddrList {
    pub fn of(addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        addrs.into_iter().fold(Self::default(), |mut list, a| {
            match a {
                IpAddr::V4(a) => list.add(a.octets()),
                IpAddr::V6(a) => list.add_v6(a.octets()),
            }
            list
        })
    }

    pub fn add(&mut self, addr: [u8; 4]) {
        self.add_mixed(mix(u64::from(u32::from_be_bytes(addr))));
    }

    /// Both halves go through the mixer, so addresses that differ in either half differ here.
    pub fn add_v6(&mut self, a: [u8; 16]) {
        let hi = u64::from_be_bytes([a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]]);
        let lo = u64::from_be_bytes([a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]]);
        self.add_mixed(mix(mix(hi) ^ lo));
    }

    fn add_mixed(&mut self, x: u64) {
        self.digest = self.digest.wrapping_add(x);
        self.count = self.count.wrapping_add(1);
    }
}

/// splitmix64's finalizer: a bijection, so two 64-bit values never mix to the same one.
const fn mix(x: u64) -> u64 {
    let mut x = x ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// An instance's configuration, as far as receiving adverts needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    pub vrid: u8,
    pub version: Version,
    /// Only compared for v2: a v3 backup adopts the master's interval.
    pub interval_cs: u16,
    /// Only compared for v2. Build a password with [`Auth::password`].
    pub auth: Auth,
    /// Our own source address (IPv4 primary, IPv6 link-local): an advert from it is ours,
    /// looped back.
    pub local_addr: IpAddr,
}

impl<'a> Advert<'a> {
    pub fn addrs(&self) -> Addrs<'a> {
        Addrs {
            v4: self.v4.iter(),
            v6: self.v6.iter(),
        }
    }

    /// The address list check (RFC 3768 §7.1 / RFC 9568 §7.1 "MAY verify that the IP
    /// address(es) associated with the VRID are valid"), as keepalived 2.2.7 makes it: as many
    /// addresses as ours, and each of ours among them (so the same set). A mismatch is a
    /// misconfigured router, not an attacker (anyone can copy the list): the advert is dropped.
    /// The kernel program compares [`AddrList`] digests instead, for the same verdict.
    pub fn check_addrs(&self, ours: &[IpAddr]) -> Result<(), DecodeError> {
        let want = u8::try_from(ours.len()).unwrap_or(u8::MAX);
        let got = self.addrs().len();
        if got != ours.len() {
            return Err(DecodeError::AddressCount {
                got: got as u8,
                want,
            });
        }
        match ours.iter().find(|a| !self.addrs().any(|b| b == **a)) {
            Some(missing) => Err(DecodeError::AddressMissing(*missing)),
            None => Ok(()),
        }
    }

    /// RFC 3768 §7.1 / RFC 9568 §7.1 checks that depend on the receiving instance.
    pub fn check(&self, expect: &Expect) -> Result<(), DecodeError> {
        if self.vrid != expect.vrid {
            return Err(DecodeError::VridMismatch {
                got: self.vrid,
                want: expect.vrid,
            });
        }
        if self.version != expect.version {
            return Err(DecodeError::VersionMismatch {
                got: self.version,
                want: expect.version,
            });
        }
        if self.src == expect.local_addr {
            return Err(DecodeError::OwnAdvert(self.src));
        }
        if self.version == Version::V3 {
            return Ok(());
        }
        match (self.auth, expect.auth) {
            (Auth::Other(VRRP_AUTH_AH), _) => return Err(DecodeError::AuthAh),
            (got, want) if got.type_code() != want.type_code() => {
                return Err(DecodeError::AuthTypeMismatch {
                    got: got.type_code(),
                    want: want.type_code(),
                })
            }
            (Auth::Pass(got), Auth::Pass(want)) if got != want => {
                return Err(DecodeError::PasswordMismatch)
            }
            _ => {}
        }
        if self.interval_cs != expect.interval_cs {
            return Err(DecodeError::IntervalMismatch {
                got_cs: self.interval_cs,
                want_cs: expect.interval_cs,
            });
        }
        Ok(())
    }
}

/// The IP version a packet says it is (its first four bits).
pub fn ip_version(packet: &[u8]) -> Option<u8> {
    packet.first().map(|b| b >> 4)
}

/// Decodes an advert of either family, as its IP version says: [`decode_ipv6`] or
/// [`decode_ipv4`] (which names any other version).
pub fn decode(packet: &[u8]) -> Result<Advert<'_>, DecodeError> {
    match ip_version(packet) {
        Some(6) => decode_ipv6(packet),
        _ => decode_ipv4(packet),
    }
}

/// The source address of an IP packet of either version, whatever it carries: for the log of
/// one that failed to decode.
pub fn source(packet: &[u8]) -> Option<IpAddr> {
    match ip_version(packet)? {
        4 => header_at::<Ipv4Hdr>(packet, 0).map(|ip| ip.src().into()),
        6 => header_at::<Ipv6Hdr>(packet, 0).map(|ip| ip.src().into()),
        _ => None,
    }
}

/// Decodes an IPv4 packet (header with any options, then VRRP; bytes past the IP total length,
/// such as Ethernet padding, are ignored) and runs the receive checks that need no configuration.
pub fn decode_ipv4(packet: &[u8]) -> Result<Advert<'_>, DecodeError> {
    let mut advert = decode_ipv4_fields(packet)?;
    // The field checks passed, so the header and the VRRP message are where they say.
    let ip: &Ipv4Hdr = header_at(packet, 0).ok_or(DecodeError::NotIpv4(0))?;
    let datagram = packet
        .get(..usize::from(ip.total_len()))
        .unwrap_or_default();
    let (ip_header, vrrp) = datagram
        .split_at_checked(ip.header_len())
        .unwrap_or_default();
    // A raw socket gets this checked by the kernel; XDP does not.
    if Checksum::new().update(ip_header).finish() != 0 {
        return Err(DecodeError::IpChecksum);
    }
    let pseudo = pseudo_header_v4(ip.src, ip.dst, vrrp.len() as u16);
    advert.checksum_form = Some(verify_checksum(advert.version, Pseudo::V4(pseudo), vrrp)?);
    Ok(advert)
}

/// Decodes an IPv6 packet (fixed header, VRRP right after it; bytes past the payload length are
/// ignored) and runs the receive checks that need no configuration (RFC 9568 §7.1). Extension
/// headers are not walked: no VRRP sender adds one, and the kernel program could not follow an
/// arbitrary chain; such a packet is [`DecodeError::NextHeader`] on both receive paths alike.
pub fn decode_ipv6(packet: &[u8]) -> Result<Advert<'_>, DecodeError> {
    let mut advert = decode_ipv6_fields(packet)?;
    let ip: &Ipv6Hdr = header_at(packet, 0).ok_or(DecodeError::NotIpv6(0))?;
    let vrrp = packet
        .get(IPV6_HDR_LEN..IPV6_HDR_LEN + usize::from(ip.payload_len()))
        .unwrap_or_default();
    let pseudo = pseudo_header_v6(ip.src, ip.dst, vrrp.len() as u32, IPPROTO_VRRP);
    advert.checksum_form = Some(verify_checksum(advert.version, Pseudo::V6(pseudo), vrrp)?);
    Ok(advert)
}

/// The two checksums [`decode_ipv4`] verifies (IPv4 header; VRRP, either v3 form), for the
/// kernel program, over the packet in `buf[..len]` whose fields [`decode_ipv4_fields`] accepted
/// with `version` (so its header has no options); `buf` holds zeros from `len` to the next
/// multiple of [`crate::checksum::SUM_STEP`]. With [`decode_ipv4_fields`] this is
/// [`decode_ipv4`]'s verdict.
pub fn checksums_hold<const N: usize>(buf: &[u8; N], len: usize, version: Version) -> bool {
    let Some(ip) = header_at::<Ipv4Hdr>(buf, 0) else {
        return false;
    };
    if ip.header_len() != IPV4_HDR_LEN || usize::from(ip.total_len()) != len {
        return false;
    }
    let header = sum_prefix::<{ IPV4_HDR_LEN / 2 }, N>(buf);
    if !folds_to_valid(header) {
        return false;
    }
    // Plain sums: the message's is the packet's less the header's.
    let message = sum_zero_padded(buf, len) - header;
    match version {
        Version::V2 => folds_to_valid(message),
        Version::V3 => {
            // Source and destination (header bytes 12..20), protocol, VRRP length.
            let addrs = header - sum_prefix::<6, N>(buf);
            let pseudo = addrs + u64::from(IPPROTO_VRRP) + (len - IPV4_HDR_LEN) as u64;
            folds_to_valid(message + pseudo) || folds_to_valid(message)
        }
    }
}

/// [`checksums_hold`] for IPv6: the VRRP checksum over the pseudo-header (RFC 8200 §8.1), of
/// the packet in `buf[..len]` whose fields [`decode_ipv6_fields`] accepted.
pub fn checksum_v6_holds<const N: usize>(buf: &[u8; N], len: usize) -> bool {
    let Some(ip) = header_at::<Ipv6Hdr>(buf, 0) else {
        return false;
    };
    if IPV6_HDR_LEN + usize::from(ip.payload_len()) != len {
        return false;
    }
    let header = sum_prefix::<{ IPV6_HDR_LEN / 2 }, N>(buf);
    let message = sum_zero_padded(buf, len) - header;
    // Source and destination are header bytes 8..40; the 32-bit length's high half is zero.
    let addrs = header - sum_prefix::<4, N>(buf);
    folds_to_valid(message + addrs + u64::from(IPPROTO_VRRP) + (len - IPV6_HDR_LEN) as u64)
}

/// Every receive check of [`decode_ipv4`] but the two checksums (IPv4 header, VRRP), the only ones
/// that loop over the packet; the kernel program adds [`checksums_hold`] for those.
#[cfg_attr(target_arch = "bpf", inline(always))]
pub fn decode_ipv4_fields(packet: &[u8]) -> Result<Advert<'_>, DecodeError> {
    let ip: &Ipv4Hdr = header_at(packet, 0).ok_or(DecodeError::Truncated {
        need: IPV4_HDR_LEN,
        have: packet.len(),
    })?;
    if ip.version() != 4 {
        return Err(DecodeError::NotIpv4(ip.version()));
    }
    let header_len = ip.header_len();
    if header_len < IPV4_HDR_LEN {
        return Err(DecodeError::IpHeaderLength(header_len));
    }
    // One rule for both receive paths: the kernel rewrites some options (Record Route) before
    // a raw socket sees the header, so the XDP program and the socket would see two packets.
    if header_len > IPV4_HDR_LEN {
        return Err(DecodeError::IpOptions(header_len));
    }
    let total_len = usize::from(ip.total_len());
    let datagram = packet.get(..total_len).ok_or(DecodeError::Truncated {
        need: total_len,
        have: packet.len(),
    })?;
    let vrrp = datagram.get(header_len..).ok_or(DecodeError::Truncated {
        need: header_len,
        have: total_len,
    })?;
    if ip.is_fragment() {
        return Err(DecodeError::Fragment);
    }
    if ip.proto != IPPROTO_VRRP {
        return Err(DecodeError::NotVrrp(ip.proto));
    }
    if ip.ttl != VRRP_TTL {
        return Err(DecodeError::Ttl(ip.ttl));
    }
    let from = IpFields {
        src: IpAddr::V4(ip.src()),
        dst: IpAddr::V4(ip.dst()),
        ttl: ip.ttl,
        tos: ip.tos,
        ip_id: ip.id(),
        header_len,
    };
    decode_vrrp(vrrp, &from)
}

/// Every receive check of [`decode_ipv6`] but the VRRP checksum; the kernel program adds
/// [`checksum_v6_holds`] for it.
#[cfg_attr(target_arch = "bpf", inline(always))]
pub fn decode_ipv6_fields(packet: &[u8]) -> Result<Advert<'_>, DecodeError> {
    let ip: &Ipv6Hdr = header_at(packet, 0).ok_or(DecodeError::Truncated {
        need: IPV6_HDR_LEN,
        have: packet.len(),
    })?;
    if ip.version() != 6 {
        return Err(DecodeError::NotIpv6(ip.version()));
    }
    let total_len = IPV6_HDR_LEN + usize::from(ip.payload_len());
    let vrrp = packet
        .get(IPV6_HDR_LEN..total_len)
        .ok_or(DecodeError::Truncated {
            need: total_len,
            have: packet.len(),
        })?;
    if ip.next_hdr != IPPROTO_VRRP {
        return Err(DecodeError::NextHeader(ip.next_hdr));
    }
    // RFC 9568 §5.1.2.3 wants 255 everywhere; keepalived checks it on multicast adverts only
    // and sends its unicast ones with the default hop limit (64), so we accept those as it does.
    let dst = ip.dst();
    if dst.is_multicast() && ip.hop_limit != VRRP_TTL {
        return Err(DecodeError::HopLimit(ip.hop_limit));
    }
    let from = IpFields {
        src: IpAddr::V6(ip.src()),
        dst: IpAddr::V6(dst),
        ttl: ip.hop_limit,
        tos: ip.traffic_class(),
        ip_id: 0,
        header_len: IPV6_HDR_LEN,
    };
    decode_vrrp(vrrp, &from)
}

/// What the IP header says, for [`decode_vrrp`].
struct IpFields {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    tos: u8,
    ip_id: u16,
    header_len: usize,
}

/// The checks of the VRRP message both families share (version, type, count, length, interval),
/// for the message `vrrp` carried as `ip` says.
///
/// Inlined in the kernel program, as the `_fields` decoders are: called, each would put its own
/// frame on the program's call chain, which outgrows the 512 bytes the verifier allows.
#[cfg_attr(target_arch = "bpf", inline(always))]
fn decode_vrrp<'a>(vrrp: &'a [u8], ip: &IpFields) -> Result<Advert<'a>, DecodeError> {
    let v6 = matches!(ip.src, IpAddr::V6(_));
    let hdr: &VrrpHdr = header_at(vrrp, 0).ok_or(DecodeError::Truncated {
        need: ip.header_len + VRRP_HDR_LEN,
        have: ip.header_len + vrrp.len(),
    })?;
    let version = match hdr.version() {
        VRRP_VERSION_2 if v6 => return Err(DecodeError::V2OverIpv6),
        VRRP_VERSION_2 => Version::V2,
        VRRP_VERSION_3 => Version::V3,
        other => return Err(DecodeError::Version(other)),
    };
    if hdr.kind() != VRRP_TYPE_ADVERT {
        return Err(DecodeError::Type(hdr.kind()));
    }
    if hdr.count == 0 {
        return Err(DecodeError::NoAddresses);
    }
    let addr_len = if v6 { 16 } else { 4 };
    let addrs_len = addr_len * usize::from(hdr.count);
    let expected = VRRP_HDR_LEN + addrs_len + auth_data_len(version);
    if vrrp.len() != expected {
        return Err(DecodeError::Length {
            count: hdr.count,
            len: vrrp.len(),
            expected,
        });
    }
    let interval_cs = hdr.interval_cs();
    if interval_cs == 0 {
        return Err(DecodeError::ZeroInterval);
    }

    // The length check above makes these splits total; the defaults only avoid panic paths.
    let body = vrrp.get(VRRP_HDR_LEN..).unwrap_or_default();
    let (addr_bytes, auth_data) = body.split_at_checked(addrs_len).unwrap_or_default();
    let auth = match (version, hdr.auth_type()) {
        (Version::V3, _) => Auth::None,
        (Version::V2, VRRP_AUTH_NONE) => Auth::None,
        (Version::V2, VRRP_AUTH_PASS) => {
            Auth::Pass(auth_data.as_chunks().0.first().copied().unwrap_or_default())
        }
        (Version::V2, other) => Auth::Other(other),
    };
    let (v4, v6) = match v6 {
        true => (&[][..], addr_bytes.as_chunks().0),
        false => (addr_bytes.as_chunks().0, &[][..]),
    };
    Ok(Advert {
        version,
        vrid: hdr.vrid,
        priority: hdr.priority,
        interval_cs,
        auth,
        src: ip.src,
        dst: ip.dst,
        ttl: ip.ttl,
        tos: ip.tos,
        ip_id: ip.ip_id,
        checksum_form: None,
        v4,
        v6,
    })
}

const fn auth_data_len(version: Version) -> usize {
    match version {
        Version::V2 => VRRP_AUTH_DATA_LEN,
        Version::V3 => 0,
    }
}

/// Sum of the IPv4 pseudo-header that v3 checksums may cover: UDP's (RFC 768) with protocol 112
/// and the VRRP message length.
fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], vrrp_len: u16) -> Checksum {
    let [len_hi, len_lo] = vrrp_len.to_be_bytes();
    Checksum::new()
        .update(&src)
        .update(&dst)
        .update(&[0, IPPROTO_VRRP, len_hi, len_lo])
}

/// The pseudo-header sum a VRRP checksum may cover, by carrier.
#[derive(Clone, Copy)]
enum Pseudo {
    /// v2 covers the message only; v3 either form.
    V4(Checksum),
    /// Always covered.
    V6(Checksum),
}

/// Checks the VRRP checksum of `vrrp` (a whole message, of even length) in the forms its version
/// and carrier allow, and tells which one matched.
fn verify_checksum(
    version: Version,
    pseudo: Pseudo,
    vrrp: &[u8],
) -> Result<ChecksumForm, DecodeError> {
    let (fixed, rest) = vrrp.split_at_checked(VRRP_HDR_LEN).unwrap_or_default();
    let (before, field) = fixed.split_at_checked(6).unwrap_or_default();
    // Summing without the field gives both the verdict (add the field: 0 means valid, whichever
    // of the two zero representations the sender used) and the expected value for the log.
    let message = Checksum::new().update(before).update(rest);
    let got = u16::from_be_bytes(field.as_chunks().0.first().copied().unwrap_or_default());
    let valid = |sum: Checksum| sum.update(field).finish() == 0;
    let with_pseudo = |pseudo: Checksum| pseudo.update(before).update(rest);
    match (pseudo, version) {
        (Pseudo::V6(pseudo), _) if valid(with_pseudo(pseudo)) => Ok(ChecksumForm::WithPseudoHeader),
        (Pseudo::V6(pseudo), _) => Err(DecodeError::ChecksumV6 {
            got,
            expected: with_pseudo(pseudo).finish(),
        }),
        (Pseudo::V4(_), Version::V2) if valid(message) => Ok(ChecksumForm::MessageOnly),
        (Pseudo::V4(_), Version::V2) => Err(DecodeError::Checksum {
            got,
            expected: message.finish(),
        }),
        (Pseudo::V4(pseudo), Version::V3) => {
            let pseudo = with_pseudo(pseudo);
            if valid(pseudo) {
                Ok(ChecksumForm::WithPseudoHeader)
            } else if valid(message) {
                Ok(ChecksumForm::MessageOnly)
            } else {
                Err(DecodeError::ChecksumV3 {
                    got,
                    with_pseudo_header: pseudo.finish(),
                    message_only: message.finish(),
                })
            }
        }
    }
}

/// What to send; [`encode`] turns it into a whole IPv4 or IPv6 packet, by the family of `src`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertSpec<'a> {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// v2: a whole number of seconds (100..=25500); v3: 1..=4095.
    pub interval_cs: u16,
    /// v2 only: must be [`Auth::None`] for v3.
    pub auth: Auth,
    /// IPv4: the primary address; IPv6: the interface's link-local address.
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 only.
    pub ip_id: u16,
    /// v3 over IPv4 only: v2 always checksums the message alone, IPv6 always with the
    /// pseudo-header.
    pub checksum_form: ChecksumForm,
    /// Of the family of `src` and `dst`.
    pub addrs: &'a [IpAddr],
}

/// Writes the packet keepalived would send for `spec` (for an `IPPROTO_RAW` socket, which takes
/// the IP header from us) at the start of `buf` and returns its length. IPv4: no options, TOS
/// 0xc0, no DF, TTL 255. IPv6: traffic class 0xc0, flow label 0, hop limit 255, no extension
/// header.
pub fn encode(spec: &AdvertSpec, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let v6 = spec.src.is_ipv6();
    let count = match spec.addrs.len() {
        0 => return Err(EncodeError::NoAddresses),
        n if n > MAX_VRRP_ADDRS => return Err(EncodeError::TooManyAddresses(n)),
        n => n,
    };
    if spec.dst.is_ipv6() != v6 || spec.addrs.iter().any(|a| a.is_ipv6() != v6) {
        return Err(EncodeError::FamilyMismatch);
    }
    if v6 && spec.version == Version::V2 {
        return Err(EncodeError::V2OverIpv6);
    }
    let interval_error = EncodeError::Interval {
        version: spec.version,
        interval_cs: spec.interval_cs,
    };
    let (interval, auth_data) = match (spec.version, spec.auth) {
        (Version::V3, Auth::None) => match spec.interval_cs {
            1..=0x0fff => (spec.interval_cs.to_be_bytes(), None),
            _ => return Err(interval_error),
        },
        (Version::V3, _) => return Err(EncodeError::AuthV3),
        (Version::V2, auth) => {
            let data = match auth {
                Auth::None => [0; VRRP_AUTH_DATA_LEN],
                Auth::Pass(data) => data,
                Auth::Other(code) => return Err(EncodeError::UnsupportedAuth(code)),
            };
            let secs = match u8::try_from(spec.interval_cs / 100) {
                Ok(secs @ 1..) if spec.interval_cs.is_multiple_of(100) => secs,
                _ => return Err(interval_error),
            };
            ([auth.type_code(), secs], Some(data))
        }
    };

    let (header_len, addr_len) = if v6 {
        (IPV6_HDR_LEN, 16)
    } else {
        (IPV4_HDR_LEN, 4)
    };
    let vrrp_len = VRRP_HDR_LEN + addr_len * count + auth_data_len(spec.version);
    let total_len = header_len + vrrp_len;
    let too_small = EncodeError::BufferTooSmall {
        need: total_len,
        have: buf.len(),
    };
    let out = buf.get_mut(..total_len).ok_or(too_small)?;
    let (ip_out, vrrp_out) = out.split_at_mut_checked(header_len).ok_or(too_small)?;

    // Lengths fit: at most 40 + 8 + 16 × 255 bytes.
    let pseudo = match (spec.src, spec.dst) {
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let ip = Ipv6Hdr {
                // Version 6, traffic class 0xc0, flow label 0.
                vtc_flow: [0x60 | VRRP_TOS >> 4, VRRP_TOS << 4, 0, 0],
                payload_len: (vrrp_len as u16).to_be_bytes(),
                next_hdr: IPPROTO_VRRP,
                hop_limit: VRRP_TTL,
                src: src.octets(),
                dst: dst.octets(),
            };
            ip_out.copy_from_slice(bytemuck::bytes_of(&ip));
            pseudo_header_v6(ip.src, ip.dst, vrrp_len as u32, IPPROTO_VRRP)
        }
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let mut ip = Ipv4Hdr {
                version_ihl: 0x45,
                tos: VRRP_TOS,
                total_len: (total_len as u16).to_be_bytes(),
                id: spec.ip_id.to_be_bytes(),
                flags_frag: [0; 2],
                ttl: VRRP_TTL,
                proto: IPPROTO_VRRP,
                checksum: [0; 2],
                src: src.octets(),
                dst: dst.octets(),
            };
            ip.checksum = Checksum::new()
                .update(bytemuck::bytes_of(&ip))
                .finish()
                .to_be_bytes();
            ip_out.copy_from_slice(bytemuck::bytes_of(&ip));
            match (spec.version, spec.checksum_form) {
                (Version::V3, ChecksumForm::WithPseudoHeader) => {
                    pseudo_header_v4(ip.src, ip.dst, vrrp_len as u16)
                }
                _ => Checksum::new(),
            }
        }
        _ => return Err(EncodeError::FamilyMismatch),
    };

    let hdr = VrrpHdr {
        version_type: (spec.version.number() << 4) | VRRP_TYPE_ADVERT,
        vrid: spec.vrid,
        priority: spec.priority,
        count: count as u8,
        interval,
        checksum: [0; 2],
    };
    let (hdr_out, body) = vrrp_out.split_at_mut(VRRP_HDR_LEN);
    hdr_out.copy_from_slice(bytemuck::bytes_of(&hdr));
    let (addrs_out, auth_out) = body.split_at_mut(addr_len * count);
    for (out, addr) in addrs_out.chunks_exact_mut(addr_len).zip(spec.addrs) {
        match addr {
            IpAddr::V4(a) => out.copy_from_slice(&a.octets()),
            IpAddr::V6(a) => out.copy_from_slice(&a.octets()),
        }
    }
    if let Some(data) = auth_data {
        auth_out.copy_from_slice(&data);
    }

    let checksum = pseudo.update(vrrp_out).finish().to_be_bytes();
    vrrp_out[6..VRRP_HDR_LEN].copy_from_slice(&checksum);
    Ok(total_len)
}
