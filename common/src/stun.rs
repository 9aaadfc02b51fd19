//! The STUN wire format (RFC 8489, RFC 5780, RFC 3489 framing): a zero-copy
//! parser that checks framing the way a hardened server must, and a small
//! writer for the messages we send.
//!
//! `stun-rs` is the reference codec (the tests check our bytes against it),
//! but it allocates and rebuilds a CRC table per FINGERPRINT; on the server's
//! hot path we need neither.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The fixed value in bytes 4..8 of every RFC 5389/8489 message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of the STUN header.
pub const HEADER_LEN: usize = 20;
/// XOR'd into the CRC-32 of a message to form FINGERPRINT.
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Method numbers.
pub mod method {
    pub const BINDING: u16 = 0x001;
}

/// Attribute types we name.
pub mod attr {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// RFC 3489; removed by RFC 5389 and unknown to us.
    pub const RESPONSE_ADDRESS: u16 = 0x0002;
    pub const CHANGE_REQUEST: u16 = 0x0003;
    /// RFC 3489 (answers to classic clients).
    pub const SOURCE_ADDRESS: u16 = 0x0004;
    /// RFC 3489 (answers to classic clients).
    pub const CHANGED_ADDRESS: u16 = 0x0005;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    pub const USERHASH: u16 = 0x001E;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const PRIORITY: u16 = 0x0024;
    pub const USE_CANDIDATE: u16 = 0x0025;
    pub const PADDING: u16 = 0x0026;
    pub const RESPONSE_PORT: u16 = 0x0027;
    pub const PASSWORD_ALGORITHMS: u16 = 0x8002;
    pub const ALTERNATE_DOMAIN: u16 = 0x8003;
    pub const SOFTWARE: u16 = 0x8022;
    pub const ALTERNATE_SERVER: u16 = 0x8023;
    pub const FINGERPRINT: u16 = 0x8028;
    pub const ICE_CONTROLLED: u16 = 0x8029;
    pub const ICE_CONTROLLING: u16 = 0x802A;
    pub const RESPONSE_ORIGIN: u16 = 0x802B;
    pub const OTHER_ADDRESS: u16 = 0x802C;

    /// Attributes 0x0000-0x7FFF must be understood by the receiver
    /// (RFC 8489 section 14).
    pub const fn is_comprehension_required(t: u16) -> bool {
        t < 0x8000
    }
}

/// CHANGE-REQUEST flag bits (RFC 5780 section 7.2).
pub mod change {
    pub const IP: u32 = 0x4;
    pub const PORT: u32 = 0x2;
}

/// The four message classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    SuccessResponse,
    ErrorResponse,
}

/// Composes the 14-bit message type from method and class.
pub const fn message_type(method: u16, class: Class) -> u16 {
    let c: u16 = match class {
        Class::Request => 0b00,
        Class::Indication => 0b01,
        Class::SuccessResponse => 0b10,
        Class::ErrorResponse => 0b11,
    };
    (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((c & 0b01) << 4)
        | ((c & 0b10) << 7)
}

/// Splits a message type into method and class.
pub const fn split_type(t: u16) -> (u16, Class) {
    let method = (t & 0x000F) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0F80);
    let class = match ((t >> 4) & 0b01) | ((t >> 7) & 0b10) {
        0 => Class::Request,
        1 => Class::Indication,
        2 => Class::SuccessResponse,
        _ => Class::ErrorResponse,
    };
    (method, class)
}

pub const BINDING_REQUEST: u16 = message_type(method::BINDING, Class::Request);
pub const BINDING_SUCCESS: u16 = message_type(method::BINDING, Class::SuccessResponse);
pub const BINDING_ERROR: u16 = message_type(method::BINDING, Class::ErrorResponse);

/// FINGERPRINT value of `bytes` (the message up to the attribute).
pub fn fingerprint(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes) ^ FINGERPRINT_XOR
}

/// Why a datagram is not a well-framed STUN message. Each is a drop reason
/// on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FrameError {
    #[error("shorter than the 20-byte STUN header")]
    Truncated,
    #[error("first two bits are not zero: not STUN")]
    NotStun,
    #[error("magic cookie is not 0x2112A442")]
    BadCookie,
    #[error("length field does not match the datagram or is not a multiple of 4")]
    BadLength,
    #[error("an attribute's length runs past the end of the message")]
    AttributeOverflow,
    #[error("FINGERPRINT is malformed or does not match")]
    BadFingerprint,
    #[error("attribute after FINGERPRINT")]
    AttributeAfterFingerprint,
}

impl FrameError {
    /// All variants, for metrics.
    pub const ALL: [FrameError; 7] = [
        FrameError::Truncated,
        FrameError::NotStun,
        FrameError::BadCookie,
        FrameError::BadLength,
        FrameError::AttributeOverflow,
        FrameError::BadFingerprint,
        FrameError::AttributeAfterFingerprint,
    ];

    /// A stable snake_case label (metrics, JSON).
    pub const fn label(self) -> &'static str {
        match self {
            FrameError::Truncated => "truncated",
            FrameError::NotStun => "not_stun",
            FrameError::BadCookie => "bad_cookie",
            FrameError::BadLength => "bad_length",
            FrameError::AttributeOverflow => "attribute_overflow",
            FrameError::BadFingerprint => "bad_fingerprint",
            FrameError::AttributeAfterFingerprint => "attribute_after_fingerprint",
        }
    }
}

/// A STUN message whose framing has been checked: header, every attribute
/// inside the length, FINGERPRINT (if any) last and correct.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    msg_type: u16,
    has_cookie: bool,
    has_fingerprint: bool,
}

impl<'a> Message<'a> {
    /// Checks the framing of `bytes`. `allow_classic` accepts RFC 3489
    /// messages, which have no magic cookie (and cannot carry FINGERPRINT).
    pub fn parse(bytes: &'a [u8], allow_classic: bool) -> Result<Self, FrameError> {
        if bytes.len() < HEADER_LEN {
            return Err(FrameError::Truncated);
        }
        if bytes[0] & 0xC0 != 0 {
            return Err(FrameError::NotStun);
        }
        let msg_type = u16::from_be_bytes([bytes[0], bytes[1]]);
        let length = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        let has_cookie = bytes[4..8] == MAGIC_COOKIE.to_be_bytes();
        if !has_cookie && !allow_classic {
            return Err(FrameError::BadCookie);
        }
        if length & 3 != 0 || HEADER_LEN + length != bytes.len() {
            return Err(FrameError::BadLength);
        }
        let mut has_fingerprint = false;
        let mut at = HEADER_LEN;
        while at < bytes.len() {
            if has_fingerprint {
                return Err(FrameError::AttributeAfterFingerprint);
            }
            // `length % 4 == 0` and `at` advances by multiples of 4, so
            // at least 4 bytes remain here.
            let t = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
            let l = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
            let padded = (l + 3) & !3;
            if at + 4 + padded > bytes.len() {
                return Err(FrameError::AttributeOverflow);
            }
            if t == attr::FINGERPRINT {
                if l != 4 || !has_cookie {
                    return Err(FrameError::BadFingerprint);
                }
                let got = u32::from_be_bytes([
                    bytes[at + 4],
                    bytes[at + 5],
                    bytes[at + 6],
                    bytes[at + 7],
                ]);
                if got != fingerprint(&bytes[..at]) {
                    return Err(FrameError::BadFingerprint);
                }
                has_fingerprint = true;
            }
            at += 4 + padded;
        }
        Ok(Message {
            bytes,
            msg_type,
            has_cookie,
            has_fingerprint,
        })
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    pub fn msg_type(&self) -> u16 {
        self.msg_type
    }
    pub fn method(&self) -> u16 {
        split_type(self.msg_type).0
    }
    pub fn class(&self) -> Class {
        split_type(self.msg_type).1
    }
    /// True for RFC 5389/8489 messages, false for RFC 3489 ones.
    pub fn has_cookie(&self) -> bool {
        self.has_cookie
    }
    pub fn has_fingerprint(&self) -> bool {
        self.has_fingerprint
    }
    /// Bytes 4..20: magic cookie and transaction ID (the whole 128-bit
    /// transaction ID of RFC 3489).
    pub fn cookie_and_transaction(&self) -> &'a [u8; 16] {
        self.bytes[4..20].try_into().expect("header checked")
    }
    /// The 96-bit transaction ID.
    pub fn transaction_id(&self) -> &'a [u8; 12] {
        self.bytes[8..20].try_into().expect("header checked")
    }
    /// Attributes in order (type, value without padding).
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            bytes: self.bytes,
            at: HEADER_LEN,
        }
    }
    /// The first attribute of type `t`.
    pub fn attribute(&self, t: u16) -> Option<&'a [u8]> {
        self.attributes().find(|(ty, _)| *ty == t).map(|(_, v)| v)
    }
    /// XOR-MAPPED-ADDRESS, decoded.
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        self.attribute(attr::XOR_MAPPED_ADDRESS)
            .and_then(|v| decode_address(v, Some(self.cookie_and_transaction())))
    }
    /// A plain address attribute (MAPPED-ADDRESS, OTHER-ADDRESS, ...).
    pub fn address(&self, t: u16) -> Option<SocketAddr> {
        self.attribute(t).and_then(|v| decode_address(v, None))
    }
    /// ERROR-CODE as (code, reason).
    pub fn error_code(&self) -> Option<(u16, &'a str)> {
        let v = self.attribute(attr::ERROR_CODE)?;
        if v.len() < 4 {
            return None;
        }
        let code = (v[2] & 0x7) as u16 * 100 + v[3] as u16;
        Some((code, std::str::from_utf8(&v[4..]).unwrap_or("")))
    }
}

/// Iterator over a framed message's attributes.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.bytes;
        if self.at + 4 > b.len() {
            return None;
        }
        let t = u16::from_be_bytes([b[self.at], b[self.at + 1]]);
        let l = u16::from_be_bytes([b[self.at + 2], b[self.at + 3]]) as usize;
        let start = self.at + 4;
        let value = b.get(start..start + l)?;
        self.at = start + ((l + 3) & !3);
        Some((t, value))
    }
}

/// Decodes a (XOR-)MAPPED-ADDRESS style value. `xor` holds the magic
/// cookie and transaction ID for XOR-encoded attributes.
pub fn decode_address(v: &[u8], xor: Option<&[u8; 16]>) -> Option<SocketAddr> {
    if v.len() < 4 {
        return None;
    }
    let zeros = [0u8; 16];
    let mask = xor.unwrap_or(&zeros);
    let port = u16::from_be_bytes([v[2] ^ mask[0], v[3] ^ mask[1]]);
    match (v[1], v.len()) {
        (0x01, 8) => {
            let mut o = [0u8; 4];
            for i in 0..4 {
                o[i] = v[4 + i] ^ mask[i];
            }
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(o)), port))
        }
        (0x02, 20) => {
            let mut o = [0u8; 16];
            for i in 0..16 {
                o[i] = v[4 + i] ^ mask[i];
            }
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(o)), port))
        }
        _ => None,
    }
}

/// The buffer given to [`MessageWriter`] is too small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("STUN message does not fit in the output buffer")]
pub struct BufferFull;

/// Writes one STUN message into a caller-owned buffer, without allocating.
pub struct MessageWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> MessageWriter<'a> {
    /// Starts a message of `msg_type` whose bytes 4..20 (cookie and
    /// transaction ID) are `cookie_and_transaction`.
    pub fn new(
        buf: &'a mut [u8],
        msg_type: u16,
        cookie_and_transaction: &[u8; 16],
    ) -> Result<Self, BufferFull> {
        if buf.len() < HEADER_LEN {
            return Err(BufferFull);
        }
        buf[0..2].copy_from_slice(&msg_type.to_be_bytes());
        buf[2..4].copy_from_slice(&[0, 0]);
        buf[4..20].copy_from_slice(cookie_and_transaction);
        Ok(MessageWriter {
            buf,
            len: HEADER_LEN,
        })
    }

    /// Starts a message with the magic cookie and a 96-bit transaction ID.
    pub fn with_transaction_id(
        buf: &'a mut [u8],
        msg_type: u16,
        transaction_id: &[u8; 12],
    ) -> Result<Self, BufferFull> {
        let mut ct = [0u8; 16];
        ct[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        ct[4..].copy_from_slice(transaction_id);
        Self::new(buf, msg_type, &ct)
    }

    fn header_mask(&self) -> [u8; 16] {
        self.buf[4..20].try_into().expect("header written")
    }

    /// Appends an attribute with `value` (padded with zeros).
    pub fn attribute(&mut self, t: u16, value: &[u8]) -> Result<&mut Self, BufferFull> {
        let padded = (value.len() + 3) & !3;
        if value.len() > u16::MAX as usize || self.len + 4 + padded > self.buf.len() {
            return Err(BufferFull);
        }
        let at = self.len;
        self.buf[at..at + 2].copy_from_slice(&t.to_be_bytes());
        self.buf[at + 2..at + 4].copy_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf[at + 4..at + 4 + value.len()].copy_from_slice(value);
        self.buf[at + 4 + value.len()..at + 4 + padded].fill(0);
        self.len += 4 + padded;
        Ok(self)
    }

    fn address_value(addr: SocketAddr, mask: &[u8; 16], out: &mut [u8; 20]) -> usize {
        out[0] = 0;
        let port = addr.port().to_be_bytes();
        out[2] = port[0] ^ mask[0];
        out[3] = port[1] ^ mask[1];
        match addr.ip() {
            IpAddr::V4(ip) => {
                out[1] = 0x01;
                for (i, b) in ip.octets().iter().enumerate() {
                    out[4 + i] = b ^ mask[i];
                }
                8
            }
            IpAddr::V6(ip) => {
                out[1] = 0x02;
                for (i, b) in ip.octets().iter().enumerate() {
                    out[4 + i] = b ^ mask[i];
                }
                20
            }
        }
    }

    /// Appends a plain address attribute (MAPPED-ADDRESS, OTHER-ADDRESS...).
    pub fn address(&mut self, t: u16, addr: SocketAddr) -> Result<&mut Self, BufferFull> {
        let mut v = [0u8; 20];
        let n = Self::address_value(addr, &[0; 16], &mut v);
        self.attribute(t, &v[..n])
    }

    /// Appends an XOR-encoded address attribute (XOR-MAPPED-ADDRESS).
    pub fn xor_address(&mut self, t: u16, addr: SocketAddr) -> Result<&mut Self, BufferFull> {
        let mut v = [0u8; 20];
        let mask = self.header_mask();
        let n = Self::address_value(addr, &mask, &mut v);
        self.attribute(t, &v[..n])
    }

    /// Appends ERROR-CODE.
    pub fn error_code(&mut self, code: u16, reason: &str) -> Result<&mut Self, BufferFull> {
        let r = reason.as_bytes();
        let mut v = [0u8; 4 + 128];
        let n = r.len().min(128);
        v[2] = ((code / 100) & 0x7) as u8;
        v[3] = (code % 100) as u8;
        v[4..4 + n].copy_from_slice(&r[..n]);
        self.attribute(attr::ERROR_CODE, &v[..4 + n])
    }

    /// Appends UNKNOWN-ATTRIBUTES listing `types`.
    pub fn unknown_attributes(&mut self, types: &[u16]) -> Result<&mut Self, BufferFull> {
        let mut v = [0u8; 64];
        let n = types.len().min(32);
        for (i, t) in types[..n].iter().enumerate() {
            v[2 * i..2 * i + 2].copy_from_slice(&t.to_be_bytes());
        }
        self.attribute(attr::UNKNOWN_ATTRIBUTES, &v[..2 * n])
    }

    /// Appends FINGERPRINT over everything written so far.
    pub fn fingerprint(&mut self) -> Result<&mut Self, BufferFull> {
        if self.len + 8 > self.buf.len() {
            return Err(BufferFull);
        }
        // The length field must already count the FINGERPRINT attribute.
        let total = (self.len + 8 - HEADER_LEN) as u16;
        self.buf[2..4].copy_from_slice(&total.to_be_bytes());
        let fp = fingerprint(&self.buf[..self.len]);
        self.attribute(attr::FINGERPRINT, &fp.to_be_bytes())
    }

    /// Writes the length field and returns the message's total size.
    pub fn finish(self) -> usize {
        let body = (self.len - HEADER_LEN) as u16;
        self.buf[2..4].copy_from_slice(&body.to_be_bytes());
        self.len
    }
}

/// A fresh, unpredictable-enough 96-bit transaction ID (std's randomly
/// keyed SipHash over a process-wide counter; no extra dependency).
pub fn random_transaction_id() -> [u8; 12] {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    let a = h.finish();
    h.write_u64(a);
    let b = h.finish();
    let mut t = [0u8; 12];
    t[..8].copy_from_slice(&a.to_le_bytes());
    t[8..].copy_from_slice(&b.to_le_bytes()[..4]);
    t
}

/// Builds a Binding request into `buf` and returns its length. `change`
/// is a CHANGE-REQUEST flag set (0 for none), `response_port` an RFC 5780
/// RESPONSE-PORT.
pub fn binding_request(
    buf: &mut [u8],
    transaction_id: &[u8; 12],
    change: u32,
    response_port: Option<u16>,
    with_fingerprint: bool,
) -> Result<usize, BufferFull> {
    let mut w = MessageWriter::with_transaction_id(buf, BINDING_REQUEST, transaction_id)?;
    if change != 0 {
        w.attribute(attr::CHANGE_REQUEST, &change.to_be_bytes())?;
    }
    if let Some(p) = response_port {
        w.attribute(attr::RESPONSE_PORT, &[(p >> 8) as u8, p as u8, 0, 0])?;
    }
    if with_fingerprint {
        w.fingerprint()?;
    }
    Ok(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_roundtrip() {
        assert_eq!(BINDING_REQUEST, 0x0001);
        assert_eq!(BINDING_SUCCESS, 0x0101);
        assert_eq!(BINDING_ERROR, 0x0111);
        assert_eq!(message_type(method::BINDING, Class::Indication), 0x0011);
        for m in [0x001u16, 0x003, 0x004, 0x00A, 0xFFF] {
            for c in [
                Class::Request,
                Class::Indication,
                Class::SuccessResponse,
                Class::ErrorResponse,
            ] {
                assert_eq!(split_type(message_type(m, c)), (m, c));
            }
        }
    }

    #[test]
    fn framing_errors() {
        let mut buf = [0u8; 64];
        let n = binding_request(&mut buf, &[7; 12], 0, None, true).unwrap();
        assert!(Message::parse(&buf[..n], false).is_ok());
        assert_eq!(
            Message::parse(&buf[..19], false).unwrap_err(),
            FrameError::Truncated
        );
        let mut b = buf;
        b[0] = 0x80;
        assert_eq!(
            Message::parse(&b[..n], false).unwrap_err(),
            FrameError::NotStun
        );
        let mut b = buf;
        b[4] = 0;
        assert_eq!(
            Message::parse(&b[..n], false).unwrap_err(),
            FrameError::BadCookie
        );
        let mut b = buf;
        b[n - 1] ^= 1;
        assert_eq!(
            Message::parse(&b[..n], false).unwrap_err(),
            FrameError::BadFingerprint
        );
        assert_eq!(
            Message::parse(&buf[..n - 4], false).unwrap_err(),
            FrameError::BadLength
        );
    }

    #[test]
    fn address_roundtrip() {
        let mut buf = [0u8; 128];
        let tid = [9u8; 12];
        let a4: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let a6: SocketAddr = "[2001:db8::1]:40000".parse().unwrap();
        let mut w = MessageWriter::with_transaction_id(&mut buf, BINDING_SUCCESS, &tid).unwrap();
        w.xor_address(attr::XOR_MAPPED_ADDRESS, a4).unwrap();
        w.address(attr::OTHER_ADDRESS, a6).unwrap();
        let n = w.finish();
        let m = Message::parse(&buf[..n], false).unwrap();
        assert_eq!(m.xor_mapped_address(), Some(a4));
        assert_eq!(m.address(attr::OTHER_ADDRESS), Some(a6));
    }
}
