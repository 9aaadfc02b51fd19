//! Our STUN codec against the reference one (`stun-rs`) and against the
//! RFC 5769 test vectors.
//!
//! Encoder: the same message (transaction ID, attributes, order) is built
//! with both codecs and the bytes must be identical. Where `stun-rs` cannot
//! express a message (RFC 3489 framing, the classic address attributes),
//! our bytes are decoded by `stun-rs` instead and the values checked.
//! Parser: requests built by `stun-rs` go through `Message::parse`, and
//! requests from `binding_request` through the `stun-rs` decoder.

use std::net::SocketAddr;

use common::stun::{
    attr, binding_request, change, fingerprint, Class, Message, MessageWriter, BINDING_ERROR,
    BINDING_REQUEST, BINDING_SUCCESS, MAGIC_COOKIE,
};
use stun_rs::attributes::discovery::{
    ChangeRequest, ChangeRequestFlags, OtherAddress, ResponseOrigin, ResponsePort,
};
use stun_rs::attributes::ice::{IceControlling, Priority, UseCandidate};
use stun_rs::attributes::stun::{
    ErrorCode, Fingerprint, MappedAddress, MessageIntegrity, Software, UnknownAttributes, UserName,
    XorMappedAddress,
};
use stun_rs::methods::BINDING;
use stun_rs::{
    DecoderContextBuilder, HMACKey, MessageClass, MessageDecoderBuilder, MessageEncoderBuilder,
    StunAttribute, StunMessage, StunMessageBuilder, TransactionId,
};

const TID: [u8; 12] = [
    0xB7, 0xE7, 0xA7, 0x01, 0xBC, 0x34, 0xD6, 0x86, 0xFA, 0x87, 0xDF, 0xAE,
];

fn v4() -> SocketAddr {
    "192.0.2.1:32853".parse().unwrap()
}
fn v6() -> SocketAddr {
    "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .unwrap()
}
/// Addresses whose bytes exercise every XOR lane (high port bits, all
/// address octets non-zero, the IPv4-mapped IPv6 form...).
fn addresses() -> Vec<SocketAddr> {
    [
        "192.0.2.1:32853",
        "0.0.0.0:1",
        "255.255.255.255:65535",
        "203.0.113.77:3478",
        "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
        "[::1]:9",
        "[::ffff:192.0.2.1]:40000",
        "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

/// Encodes a `stun-rs` message.
fn theirs(msg: &StunMessage) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let n = MessageEncoderBuilder::default()
        .build()
        .encode(&mut buf, msg)
        .expect("stun-rs encodes");
    buf[..n].to_vec()
}

/// Builds a message with our writer.
fn ours(
    msg_type: u16,
    tid: &[u8; 12],
    f: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), common::stun::BufferFull>,
) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let mut w = MessageWriter::with_transaction_id(&mut buf, msg_type, tid).unwrap();
    f(&mut w).unwrap();
    let n = w.finish();
    buf[..n].to_vec()
}

/// Decodes with `stun-rs`, validating FINGERPRINT (and MESSAGE-INTEGRITY
/// when `key` is given), keeping unknown attributes' bytes.
fn decode(bytes: &[u8], key: Option<HMACKey>) -> StunMessage {
    let mut ctx = DecoderContextBuilder::default()
        .with_validation()
        .with_unknown_data();
    if let Some(k) = key {
        ctx = ctx.with_key(k);
    }
    let (msg, n) = MessageDecoderBuilder::default()
        .with_context(ctx.build())
        .build()
        .decode(bytes)
        .unwrap_or_else(|e| panic!("stun-rs rejects {bytes:02x?}: {e:?}"));
    assert_eq!(n, bytes.len());
    msg
}

fn success(tid: &[u8; 12]) -> StunMessageBuilder {
    StunMessageBuilder::new(BINDING, MessageClass::SuccessResponse)
        .with_transaction_id(TransactionId::from(*tid))
}

#[track_caller]
fn assert_same(ours: &[u8], theirs: &[u8]) {
    assert_eq!(ours, theirs, "\nours:   {ours:02x?}\ntheirs: {theirs:02x?}");
}

// ---------------------------------------------------------------- encoder

#[test]
fn xor_mapped_address_matches_stun_rs() {
    for addr in addresses() {
        for with_fp in [false, true] {
            let a = ours(BINDING_SUCCESS, &TID, |w| {
                w.xor_address(attr::XOR_MAPPED_ADDRESS, addr)?;
                if with_fp {
                    w.fingerprint()?;
                }
                Ok(())
            });
            let mut m = success(&TID).with_attribute(XorMappedAddress::from(addr));
            if with_fp {
                m = m.with_attribute(Fingerprint::default());
            }
            let b = theirs(&m.build());
            assert_same(&a, &b);
            // And our parser reads back what it wrote.
            let p = Message::parse(&a, false).unwrap();
            assert_eq!(p.xor_mapped_address(), Some(addr));
            assert_eq!(p.has_fingerprint(), with_fp);
        }
    }
}

#[test]
fn bare_success_is_32_or_44_bytes() {
    // The sizes the server's amplification budget relies on.
    let a = ours(BINDING_SUCCESS, &TID, |w| {
        w.xor_address(attr::XOR_MAPPED_ADDRESS, v4())?;
        Ok(())
    });
    assert_eq!(a.len(), 32);
    let a = ours(BINDING_SUCCESS, &TID, |w| {
        w.xor_address(attr::XOR_MAPPED_ADDRESS, v6())?;
        Ok(())
    });
    assert_eq!(a.len(), 44);
}

#[test]
fn full_success_matches_stun_rs() {
    // Every attribute our server may put in a success, in the server's
    // order, for both families, with SOFTWARE lengths that need 0-3 bytes
    // of padding (and a multi-byte UTF-8 one).
    let softwares = ["a", "ab", "abc", "abcd", "stun-server 0.1.0", "sörver ✓"];
    for (mapped, other) in [(v4(), v6()), (v6(), v4()), (v4(), v4()), (v6(), v6())] {
        for sw in softwares {
            for with_fp in [false, true] {
                let origin: SocketAddr = "198.51.100.1:3478".parse().unwrap();
                let a = ours(BINDING_SUCCESS, &TID, |w| {
                    w.xor_address(attr::XOR_MAPPED_ADDRESS, mapped)?;
                    w.address(attr::MAPPED_ADDRESS, mapped)?;
                    w.address(attr::OTHER_ADDRESS, other)?;
                    w.address(attr::RESPONSE_ORIGIN, origin)?;
                    w.attribute(attr::SOFTWARE, sw.as_bytes())?;
                    if with_fp {
                        w.fingerprint()?;
                    }
                    Ok(())
                });
                let mut m = success(&TID)
                    .with_attribute(XorMappedAddress::from(mapped))
                    .with_attribute(MappedAddress::from(mapped))
                    .with_attribute(OtherAddress::from(other))
                    .with_attribute(ResponseOrigin::from(origin))
                    .with_attribute(Software::new(sw).unwrap());
                if with_fp {
                    m = m.with_attribute(Fingerprint::default());
                }
                assert_same(&a, &theirs(&m.build()));

                let p = Message::parse(&a, false).unwrap();
                assert_eq!(p.class(), Class::SuccessResponse);
                assert_eq!(p.xor_mapped_address(), Some(mapped));
                assert_eq!(p.address(attr::MAPPED_ADDRESS), Some(mapped));
                assert_eq!(p.address(attr::OTHER_ADDRESS), Some(other));
                assert_eq!(p.address(attr::RESPONSE_ORIGIN), Some(origin));
                assert_eq!(p.attribute(attr::SOFTWARE), Some(sw.as_bytes()));
            }
        }
    }
}

#[test]
fn error_420_matches_stun_rs() {
    let lists: [&[u16]; 4] = [
        &[0x0002],
        &[0x0002, 0x7777],
        &[0x7777, 0x0030, 0x1234],
        &[0x0001, 0x0002, 0x0003, 0x0004, 0x0005],
    ];
    for unknown in lists {
        for reason in ["", "Unknown Attribute", "abc"] {
            for with_sw in [false, true] {
                for with_fp in [false, true] {
                    let a = ours(BINDING_ERROR, &TID, |w| {
                        w.error_code(420, reason)?;
                        w.unknown_attributes(unknown)?;
                        if with_sw {
                            w.attribute(attr::SOFTWARE, b"stun-server")?;
                        }
                        if with_fp {
                            w.fingerprint()?;
                        }
                        Ok(())
                    });
                    let mut m = StunMessageBuilder::new(BINDING, MessageClass::ErrorResponse)
                        .with_transaction_id(TransactionId::from(TID))
                        .with_attribute(ErrorCode::from(
                            stun_rs::ErrorCode::new(420, reason).unwrap(),
                        ))
                        .with_attribute(UnknownAttributes::from(unknown));
                    if with_sw {
                        m = m.with_attribute(Software::new("stun-server").unwrap());
                    }
                    if with_fp {
                        m = m.with_attribute(Fingerprint::default());
                    }
                    assert_same(&a, &theirs(&m.build()));

                    let p = Message::parse(&a, false).unwrap();
                    assert_eq!(p.class(), Class::ErrorResponse);
                    assert_eq!(p.error_code(), Some((420, reason)));
                    let listed: Vec<u16> = p
                        .attribute(attr::UNKNOWN_ATTRIBUTES)
                        .unwrap()
                        .chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                    assert_eq!(listed, unknown);
                }
            }
        }
    }
}

#[test]
fn other_error_codes_match_stun_rs() {
    for code in [300u16, 400, 401, 438, 487, 500, 699] {
        let a = ours(BINDING_ERROR, &TID, |w| {
            w.error_code(code, "x")?;
            Ok(())
        });
        let m = StunMessageBuilder::new(BINDING, MessageClass::ErrorResponse)
            .with_transaction_id(TransactionId::from(TID))
            .with_attribute(ErrorCode::from(stun_rs::ErrorCode::new(code, "x").unwrap()))
            .build();
        assert_same(&a, &theirs(&m));
    }
}

#[test]
fn classic_attributes_decode_with_stun_rs() {
    // stun-rs knows neither SOURCE-ADDRESS nor CHANGED-ADDRESS (RFC 3489),
    // so it cannot build them: decode our bytes and check the raw values,
    // which are MAPPED-ADDRESS-encoded.
    let src: SocketAddr = "198.51.100.1:3478".parse().unwrap();
    let changed: SocketAddr = "198.51.100.2:3479".parse().unwrap();
    let a = ours(BINDING_SUCCESS, &TID, |w| {
        w.address(attr::MAPPED_ADDRESS, v4())?;
        w.address(attr::SOURCE_ADDRESS, src)?;
        w.address(attr::CHANGED_ADDRESS, changed)?;
        w.fingerprint()?;
        Ok(())
    });
    let m = decode(&a, None);
    let attrs = m.attributes();
    assert_eq!(attrs.len(), 4);
    assert_eq!(
        attrs[0].expect_mapped_address().socket_address(),
        &v4(),
        "MAPPED-ADDRESS"
    );
    for (i, (t, want)) in [
        (attr::SOURCE_ADDRESS, src),
        (attr::CHANGED_ADDRESS, changed),
    ]
    .into_iter()
    .enumerate()
    {
        let StunAttribute::Unknown(u) = &attrs[1 + i] else {
            panic!("expected an unknown attribute, got {:?}", attrs[1 + i]);
        };
        assert_eq!(u.attribute_type().as_u16(), t);
        // Re-encode as a MAPPED-ADDRESS with stun-rs and compare values.
        let reference = theirs(
            &success(&TID)
                .with_attribute(MappedAddress::from(want))
                .build(),
        );
        assert_eq!(u.attribute_data().unwrap(), &reference[24..]);
    }
    assert!(attrs[3].is_fingerprint());
}

#[test]
fn classic_framing_reads_back() {
    // RFC 3489: no magic cookie, a 128-bit transaction ID. stun-rs rejects
    // such messages outright, so this is ours alone.
    let ct: [u8; 16] = *b"0123456789abcdef";
    let mut buf = [0u8; 128];
    let mut w = MessageWriter::new(&mut buf, BINDING_SUCCESS, &ct).unwrap();
    w.address(attr::MAPPED_ADDRESS, v4()).unwrap();
    let n = w.finish();
    assert!(Message::parse(&buf[..n], false).is_err());
    let p = Message::parse(&buf[..n], true).unwrap();
    assert!(!p.has_cookie());
    assert_eq!(p.cookie_and_transaction(), &ct);
    assert_eq!(p.address(attr::MAPPED_ADDRESS), Some(v4()));
}

// ---------------------------------------------------------------- parsers

#[test]
fn our_requests_match_and_decode_with_stun_rs() {
    let flags_all = [0, change::PORT, change::IP, change::IP | change::PORT];
    for flags in flags_all {
        for port in [None, Some(1u16), Some(40000)] {
            for with_fp in [false, true] {
                let mut buf = [0u8; 128];
                let n = binding_request(&mut buf, &TID, flags, port, with_fp).unwrap();
                let ours = &buf[..n];
                let m = decode(ours, None);
                assert_eq!(m.method(), BINDING);
                assert_eq!(m.class(), MessageClass::Request);
                assert_eq!(m.transaction_id().as_bytes(), &TID);
                let cr = m.get::<ChangeRequest>();
                assert_eq!(cr.is_some(), flags != 0);
                if let Some(cr) = cr {
                    assert_eq!(cr.expect_change_request().flags().bits(), flags);
                }
                let rp = m
                    .get::<ResponsePort>()
                    .map(|a| a.expect_response_port().as_u16());
                assert_eq!(rp, port);
                assert_eq!(m.get::<Fingerprint>().is_some(), with_fp);

                // Without RESPONSE-PORT the bytes are stun-rs's too. With
                // it they differ in one field: we send RESPONSE-PORT with
                // length 4 (port + 2 bytes RFFU, as coturn does), stun-rs
                // with length 2 (as stuntman does); see
                // `response_port_lengths` below.
                if port.is_none() {
                    let mut b = StunMessageBuilder::new(BINDING, MessageClass::Request)
                        .with_transaction_id(TransactionId::from(TID));
                    if flags != 0 {
                        use ChangeRequestFlags::{ChangeIp, ChangePort};
                        let cr = match flags {
                            change::PORT => ChangeRequest::new(Some(ChangePort.into())),
                            change::IP => ChangeRequest::new(Some(ChangeIp.into())),
                            _ => ChangeRequest::new(Some(ChangeIp | ChangePort)),
                        };
                        b = b.with_attribute(cr);
                    }
                    if with_fp {
                        b = b.with_attribute(Fingerprint::default());
                    }
                    assert_same(ours, &theirs(&b.build()));
                }
            }
        }
    }
}

#[test]
fn response_port_lengths() {
    // stun-rs writes RESPONSE-PORT with length 2; our parser takes it, and
    // the value is the port.
    let m = StunMessageBuilder::new(BINDING, MessageClass::Request)
        .with_transaction_id(TransactionId::from(TID))
        .with_attribute(ResponsePort::new(40000))
        .build();
    let b = theirs(&m);
    let p = Message::parse(&b, false).unwrap();
    assert_eq!(p.attribute(attr::RESPONSE_PORT), Some(&[0x9c, 0x40][..]));
    let mut buf = [0u8; 64];
    let n = binding_request(&mut buf, &TID, 0, Some(40000), false).unwrap();
    let p = Message::parse(&buf[..n], false).unwrap();
    assert_eq!(
        p.attribute(attr::RESPONSE_PORT),
        Some(&[0x9c, 0x40, 0, 0][..])
    );
}

#[test]
fn stun_rs_requests_parse() {
    let key = HMACKey::new_short_term("VOkJxbRl1RmTxUk/WvJxBt").unwrap();
    let tids: [[u8; 12]; 3] = [TID, [0; 12], [0xFF; 12]];
    for tid in tids {
        for variant in 0..6 {
            let mut b = StunMessageBuilder::new(BINDING, MessageClass::Request)
                .with_transaction_id(TransactionId::from(tid));
            let mut want: Vec<u16> = Vec::new();
            if variant >= 1 {
                b = b.with_attribute(Software::new("STUN test client").unwrap());
                want.push(attr::SOFTWARE);
            }
            if variant >= 2 {
                b = b
                    .with_attribute(Priority::new(0x6e0001ff))
                    .with_attribute(IceControlling::new(0x932ff9b151263b36))
                    .with_attribute(UseCandidate::default());
                want.extend([attr::PRIORITY, attr::ICE_CONTROLLING, attr::USE_CANDIDATE]);
            }
            if variant >= 3 {
                b = b
                    .with_attribute(ChangeRequest::new(Some(
                        ChangeRequestFlags::ChangeIp | ChangeRequestFlags::ChangePort,
                    )))
                    .with_attribute(ResponsePort::new(4242));
                want.extend([attr::CHANGE_REQUEST, attr::RESPONSE_PORT]);
            }
            if variant >= 4 {
                b = b
                    .with_attribute(UserName::new("evtj:h6vY").unwrap())
                    .with_attribute(MessageIntegrity::new(key.clone()));
                want.extend([attr::USERNAME, attr::MESSAGE_INTEGRITY]);
            }
            if variant != 5 {
                b = b.with_attribute(Fingerprint::default());
                want.push(attr::FINGERPRINT);
            }
            let bytes = theirs(&b.build());
            let p = Message::parse(&bytes, false)
                .unwrap_or_else(|e| panic!("variant {variant}: {e}: {bytes:02x?}"));
            assert_eq!(p.msg_type(), BINDING_REQUEST);
            assert_eq!(p.class(), Class::Request);
            assert!(p.has_cookie());
            assert_eq!(p.transaction_id(), &tid);
            assert_eq!(p.has_fingerprint(), variant != 5);
            let got: Vec<u16> = p.attributes().map(|(t, _)| t).collect();
            assert_eq!(got, want, "variant {variant}");
            if variant >= 3 {
                assert_eq!(p.attribute(attr::CHANGE_REQUEST), Some(&[0, 0, 0, 6][..]));
            }
            if p.has_fingerprint() {
                assert_flips_never_pass_fingerprint(&bytes);
            }
        }
    }
}

/// Flips every bit of `bytes` (a message with FINGERPRINT) in turn: the
/// result is never accepted as a message with a valid FINGERPRINT. It may
/// still parse without one: a flipped length can swallow the FINGERPRINT
/// into the attribute before it, and a flipped FINGERPRINT type makes it an
/// ordinary attribute; FINGERPRINT cannot protect its own framing.
#[track_caller]
fn assert_flips_never_pass_fingerprint(bytes: &[u8]) {
    let fp_type = bytes.len() - 8..bytes.len() - 6;
    let mut swallowed = 0;
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.to_vec();
            b[i] ^= 1 << bit;
            if let Ok(m) = Message::parse(&b, false) {
                assert!(!m.has_fingerprint(), "flip {i}.{bit} passes FINGERPRINT");
                if !fp_type.contains(&i) {
                    swallowed += 1;
                }
            }
        }
    }
    // Besides FINGERPRINT's type, only the few length bits that make an
    // attribute end exactly on a later attribute boundary can do that.
    assert!(swallowed <= 8, "{swallowed} flips parse");
}

// ---------------------------------------------------------------- RFC 5769

/// RFC 5769 section 2.1: sample request (short-term credentials, password
/// "VOkJxbRl1RmTxUk/WvJxBt", padding bytes are spaces).
const RFC5769_REQUEST: [u8; 108] = [
    0x00, 0x01, 0x00, 0x58, // Request type and message length
    0x21, 0x12, 0xa4, 0x42, // Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, // }
    0xbc, 0x34, 0xd6, 0x86, // }  Transaction ID
    0xfa, 0x87, 0xdf, 0xae, // }
    0x80, 0x22, 0x00, 0x10, // SOFTWARE attribute header
    0x53, 0x54, 0x55, 0x4e, // }
    0x20, 0x74, 0x65, 0x73, // }  User-agent...
    0x74, 0x20, 0x63, 0x6c, // }  ...name
    0x69, 0x65, 0x6e, 0x74, // }
    0x00, 0x24, 0x00, 0x04, // PRIORITY attribute header
    0x6e, 0x00, 0x01, 0xff, // ICE priority value
    0x80, 0x29, 0x00, 0x08, // ICE-CONTROLLED attribute header
    0x93, 0x2f, 0xf9, 0xb1, // }  Pseudo-random tie breaker...
    0x51, 0x26, 0x3b, 0x36, // }   ...for ICE control
    0x00, 0x06, 0x00, 0x09, // USERNAME attribute header
    0x65, 0x76, 0x74, 0x6a, // }
    0x3a, 0x68, 0x36, 0x76, // }  Username (9 bytes) and padding (3 bytes)
    0x59, 0x20, 0x20, 0x20, // }
    0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY attribute header
    0x9a, 0xea, 0xa7, 0x0c, // }
    0xbf, 0xd8, 0xcb, 0x56, // }
    0x78, 0x1e, 0xf2, 0xb5, // }  HMAC-SHA1 fingerprint
    0xb2, 0xd3, 0xf2, 0x49, // }
    0xc1, 0xb5, 0x71, 0xa2, // }
    0x80, 0x28, 0x00, 0x04, // FINGERPRINT attribute header
    0xe5, 0x7a, 0x3b, 0xcf, // CRC32 fingerprint
];

/// RFC 5769 section 2.2: sample IPv4 response.
const RFC5769_IPV4_RESPONSE: [u8; 80] = [
    0x01, 0x01, 0x00, 0x3c, // Response type and message length
    0x21, 0x12, 0xa4, 0x42, // Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, // }
    0xbc, 0x34, 0xd6, 0x86, // }  Transaction ID
    0xfa, 0x87, 0xdf, 0xae, // }
    0x80, 0x22, 0x00, 0x0b, // SOFTWARE attribute header
    0x74, 0x65, 0x73, 0x74, // }
    0x20, 0x76, 0x65, 0x63, // }  UTF-8 server name
    0x74, 0x6f, 0x72, 0x20, // }
    0x00, 0x20, 0x00, 0x08, // XOR-MAPPED-ADDRESS attribute header
    0x00, 0x01, 0xa1, 0x47, // Address family (IPv4) and xor'd mapped port number
    0xe1, 0x12, 0xa6, 0x43, // Xor'd mapped IPv4 address
    0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY attribute header
    0x2b, 0x91, 0xf5, 0x99, // }
    0xfd, 0x9e, 0x90, 0xc3, // }
    0x8c, 0x74, 0x89, 0xf9, // }  HMAC-SHA1 fingerprint
    0x2a, 0xf9, 0xba, 0x53, // }
    0xf0, 0x6b, 0xe7, 0xd7, // }
    0x80, 0x28, 0x00, 0x04, // FINGERPRINT attribute header
    0xc0, 0x7d, 0x4c, 0x96, // CRC32 fingerprint
];

/// RFC 5769 section 2.3: sample IPv6 response.
const RFC5769_IPV6_RESPONSE: [u8; 92] = [
    0x01, 0x01, 0x00, 0x48, // Response type and message length
    0x21, 0x12, 0xa4, 0x42, // Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, // }
    0xbc, 0x34, 0xd6, 0x86, // }  Transaction ID
    0xfa, 0x87, 0xdf, 0xae, // }
    0x80, 0x22, 0x00, 0x0b, // SOFTWARE attribute header
    0x74, 0x65, 0x73, 0x74, // }
    0x20, 0x76, 0x65, 0x63, // }  UTF-8 server name
    0x74, 0x6f, 0x72, 0x20, // }
    0x00, 0x20, 0x00, 0x14, // XOR-MAPPED-ADDRESS attribute header
    0x00, 0x02, 0xa1, 0x47, // Address family (IPv6) and xor'd mapped port number
    0x01, 0x13, 0xa9, 0xfa, // }
    0xa5, 0xd3, 0xf1, 0x79, // }  Xor'd mapped IPv6 address
    0xbc, 0x25, 0xf4, 0xb5, // }
    0xbe, 0xd2, 0xb9, 0xd9, // }
    0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY attribute header
    0xa3, 0x82, 0x95, 0x4e, // }
    0x4b, 0xe6, 0x7b, 0xf1, // }
    0x17, 0x84, 0xc9, 0x7c, // }  HMAC-SHA1 fingerprint
    0x82, 0x92, 0xc2, 0x75, // }
    0xbf, 0xe3, 0xed, 0x41, // }
    0x80, 0x28, 0x00, 0x04, // FINGERPRINT attribute header
    0xc8, 0xfb, 0x0b, 0x4c, // CRC32 fingerprint
];

const RFC5769_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";

#[test]
fn rfc5769_fingerprints_are_ours() {
    // Our CRC over each vector (up to FINGERPRINT) gives the RFC's value.
    for (v, want) in [
        (&RFC5769_REQUEST[..], 0xe57a3bcfu32),
        (&RFC5769_IPV4_RESPONSE[..], 0xc07d4c96),
        (&RFC5769_IPV6_RESPONSE[..], 0xc8fb0b4c),
    ] {
        assert_eq!(fingerprint(&v[..v.len() - 8]), want);
    }
}

#[test]
fn rfc5769_sample_request() {
    let m = Message::parse(&RFC5769_REQUEST, false).unwrap();
    assert_eq!(m.msg_type(), BINDING_REQUEST);
    assert_eq!(m.class(), Class::Request);
    assert!(m.has_cookie());
    assert!(m.has_fingerprint());
    assert_eq!(m.transaction_id(), &TID);
    assert_eq!(
        m.cookie_and_transaction()[..4],
        MAGIC_COOKIE.to_be_bytes()[..]
    );
    let types: Vec<u16> = m.attributes().map(|(t, _)| t).collect();
    assert_eq!(
        types,
        [
            attr::SOFTWARE,
            attr::PRIORITY,
            attr::ICE_CONTROLLED,
            attr::USERNAME,
            attr::MESSAGE_INTEGRITY,
            attr::FINGERPRINT
        ]
    );
    assert_eq!(m.attribute(attr::SOFTWARE), Some(&b"STUN test client"[..]));
    // The value stops at the length: the three padding spaces are not in it.
    assert_eq!(m.attribute(attr::USERNAME), Some(&b"evtj:h6vY"[..]));
    assert_eq!(
        m.attribute(attr::PRIORITY),
        Some(&[0x6e, 0x00, 0x01, 0xff][..])
    );
    assert_eq!(
        m.attribute(attr::MESSAGE_INTEGRITY).map(<[u8]>::len),
        Some(20)
    );

    // The reference decoder validates MESSAGE-INTEGRITY and FINGERPRINT.
    let key = HMACKey::new_short_term(RFC5769_PASSWORD).unwrap();
    let r = decode(&RFC5769_REQUEST, Some(key));
    let wrong = HMACKey::new_short_term("VOkJxbRl1RmTxUk/WvJxBT").unwrap();
    let ctx = DecoderContextBuilder::default()
        .with_validation()
        .with_key(wrong)
        .build();
    assert!(
        MessageDecoderBuilder::default()
            .with_context(ctx)
            .build()
            .decode(&RFC5769_REQUEST)
            .is_err(),
        "the reference decoder checks MESSAGE-INTEGRITY"
    );
    assert_eq!(r.class(), MessageClass::Request);
    assert_eq!(
        r.get::<UserName>().unwrap().expect_user_name().as_str(),
        "evtj:h6vY"
    );
    assert_eq!(
        r.get::<Priority>().unwrap().expect_priority().as_u32(),
        0x6e0001ff
    );
}

#[test]
fn rfc5769_sample_responses() {
    let key = HMACKey::new_short_term(RFC5769_PASSWORD).unwrap();
    for (bytes, want) in [
        (&RFC5769_IPV4_RESPONSE[..], v4()),
        (&RFC5769_IPV6_RESPONSE[..], v6()),
    ] {
        let m = Message::parse(bytes, false).unwrap();
        assert_eq!(m.msg_type(), BINDING_SUCCESS);
        assert_eq!(m.class(), Class::SuccessResponse);
        assert!(m.has_fingerprint());
        assert_eq!(m.transaction_id(), &TID);
        assert_eq!(m.xor_mapped_address(), Some(want));
        assert_eq!(m.attribute(attr::SOFTWARE), Some(&b"test vector"[..]));
        let types: Vec<u16> = m.attributes().map(|(t, _)| t).collect();
        assert_eq!(
            types,
            [
                attr::SOFTWARE,
                attr::XOR_MAPPED_ADDRESS,
                attr::MESSAGE_INTEGRITY,
                attr::FINGERPRINT
            ]
        );

        let r = decode(bytes, Some(key.clone()));
        assert_eq!(
            r.get::<XorMappedAddress>()
                .unwrap()
                .expect_xor_mapped_address()
                .socket_address(),
            &want
        );

        // Our writer produces the same SOFTWARE and XOR-MAPPED-ADDRESS
        // bytes (the vectors pad with spaces, we pad with zeros).
        let ours = ours(BINDING_SUCCESS, &TID, |w| {
            w.attribute(attr::SOFTWARE, b"test vector")?;
            w.xor_address(attr::XOR_MAPPED_ADDRESS, want)?;
            Ok(())
        });
        let n = ours.len();
        assert_eq!(ours[..2], bytes[..2], "type");
        assert_eq!(ours[4..20], bytes[4..20], "cookie and transaction ID");
        assert_eq!(ours[20..35], bytes[20..35]);
        assert_eq!(ours[35], 0);
        assert_eq!(bytes[35], 0x20);
        assert_eq!(ours[36..n], bytes[36..n]);

        assert_flips_never_pass_fingerprint(bytes);
    }
}
