//! The channel measurement protocol on the wire. Every datagram starts with
//! the 4-byte magic and the 1-byte protocol version, then a 1-byte message
//! type; integers are big-endian. The magic and version layout never
//! changes, so any two versions can tell each other apart. The first byte
//! (0x0C) is outside every range of the RFC 7983 demultiplexing (STUN 0-3,
//! ZRTP 16-19, DTLS 20-63, TURN channels 64-79, RTP 128-191), and bytes 4..8
//! never hold the STUN magic cookie, so an ICE agent passes these datagrams
//! to the application.

/// First four bytes of every datagram.
pub const MAGIC: [u8; 4] = [0x0C, b'I', b'P', b'C'];
/// The protocol version this ice-probe speaks.
pub const PROTOCOL_VERSION: u8 = 1;
/// Magic + version + message type.
pub const HEADER_LEN: usize = 6;
/// No datagram is larger (headers included): fits any path MTU of 1280.
pub const MAX_DATAGRAM: usize = 1200;
/// Header of a DATA message (common header + seq + send timestamp).
pub const DATA_HEADER_LEN: usize = HEADER_LEN + 16;
/// Header of a VIDEO packet (common header + seq, frame id, index, count,
/// frame timestamp, send timestamp).
pub const VIDEO_HEADER_LEN: usize = HEADER_LEN + 28;

const HELLO: u8 = 1;
const DATA: u8 = 2;
const DATA_ACK: u8 = 3;
const VIDEO: u8 = 4;
const FIN: u8 = 5;
const REPORT: u8 = 6;

/// Profile codes in HELLO.
pub const PROFILE_DATA: u8 = 1;
pub const PROFILE_VIDEO: u8 = 2;

/// One video packet: RTP-like sequence, the frame it belongs to, its place
/// in the frame and two sender-clock timestamps (microseconds since the
/// sender's session start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoPacket {
    pub seq: u32,
    pub frame_id: u32,
    pub index: u16,
    pub count: u16,
    /// The frame's capture time (the same in every packet of the frame).
    pub frame_ts_us: u64,
    pub send_ts_us: u64,
    /// Frame bytes carried after the header.
    pub payload_len: usize,
}

/// The sender's half of one direction, sent in FIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderSummary {
    pub sent_packets: u64,
    pub sent_payload_bytes: u64,
    pub frames_sent: u64,
    pub duration_us: u64,
    /// p50, p90, p99, max of message RTT, microseconds (data profile).
    pub rtt_us: Option<[u32; 4]>,
}

/// The receiver's half of one direction, sent in REPORT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiverSummary {
    pub received_packets: u64,
    pub received_payload_bytes: u64,
    /// From the first to the last measurement packet's arrival.
    pub span_us: u64,
    /// RFC 3550 jitter, microseconds (video profile).
    pub jitter_us: Option<u32>,
    /// Frames complete within the playout budget (video profile).
    pub frames_complete_in_time: Option<u64>,
}

/// A message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Sent until both sides have heard each other. `heard_you`: we have
    /// received the peer's HELLO.
    Hello {
        heard_you: bool,
        profile: u8,
        duration_ms: u32,
    },
    Data {
        seq: u64,
        send_ts_us: u64,
        payload_len: usize,
    },
    /// Echoes a DATA message's sequence and timestamp.
    DataAck {
        seq: u64,
        echo_ts_us: u64,
    },
    Video(VideoPacket),
    /// Our sending is over; here is the sender's half. Repeated until the
    /// REPORT arrives.
    Fin(SenderSummary),
    /// The answer to FIN: the receiver's half.
    Report(ReceiverSummary),
}

/// What a received datagram is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// No magic: not ours (ignored).
    NotOurs,
    /// Our magic with another protocol version.
    OtherVersion(u8),
    /// Our magic and version, but it does not parse.
    Malformed,
    Ours(Message),
}

const NONE_U32: u32 = u32::MAX;
const NONE_U64: u64 = u64::MAX;

/// Encodes `msg` in protocol `version` into `out` (cleared first).
pub fn encode(version: u8, msg: &Message, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&MAGIC);
    out.push(version);
    match *msg {
        Message::Hello {
            heard_you,
            profile,
            duration_ms,
        } => {
            out.push(HELLO);
            out.push(heard_you as u8);
            out.push(profile);
            out.extend_from_slice(&duration_ms.to_be_bytes());
        }
        Message::Data {
            seq,
            send_ts_us,
            payload_len,
        } => {
            out.push(DATA);
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(&send_ts_us.to_be_bytes());
            out.resize(out.len() + payload_len, 0);
        }
        Message::DataAck { seq, echo_ts_us } => {
            out.push(DATA_ACK);
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(&echo_ts_us.to_be_bytes());
        }
        Message::Video(p) => {
            out.push(VIDEO);
            out.extend_from_slice(&p.seq.to_be_bytes());
            out.extend_from_slice(&p.frame_id.to_be_bytes());
            out.extend_from_slice(&p.index.to_be_bytes());
            out.extend_from_slice(&p.count.to_be_bytes());
            out.extend_from_slice(&p.frame_ts_us.to_be_bytes());
            out.extend_from_slice(&p.send_ts_us.to_be_bytes());
            out.resize(out.len() + p.payload_len, 0);
        }
        Message::Fin(s) => {
            out.push(FIN);
            for v in [
                s.sent_packets,
                s.sent_payload_bytes,
                s.frames_sent,
                s.duration_us,
            ] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            let rtt = s.rtt_us.unwrap_or([NONE_U32; 4]);
            for v in rtt {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        Message::Report(r) => {
            out.push(REPORT);
            out.extend_from_slice(&r.received_packets.to_be_bytes());
            out.extend_from_slice(&r.received_payload_bytes.to_be_bytes());
            out.extend_from_slice(&r.span_us.to_be_bytes());
            out.extend_from_slice(&r.jitter_us.unwrap_or(NONE_U32).to_be_bytes());
            out.extend_from_slice(&r.frames_complete_in_time.unwrap_or(NONE_U64).to_be_bytes());
        }
    }
}

/// Reads big-endian fields off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_at_checked(N)?;
        self.0 = rest;
        head.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_be_bytes)
    }
}

/// Classifies and decodes one datagram of protocol `version`.
pub fn parse(version: u8, buf: &[u8]) -> Parsed {
    if buf.len() < 5 || buf[..4] != MAGIC {
        return Parsed::NotOurs;
    }
    if buf[4] != version {
        return Parsed::OtherVersion(buf[4]);
    }
    match parse_body(&buf[5..]) {
        Some(m) => Parsed::Ours(m),
        None => Parsed::Malformed,
    }
}

fn parse_body(body: &[u8]) -> Option<Message> {
    let mut r = Reader(body);
    let msg = match r.u8()? {
        HELLO => Message::Hello {
            heard_you: r.u8()? != 0,
            profile: r.u8()?,
            duration_ms: r.u32()?,
        },
        DATA => Message::Data {
            seq: r.u64()?,
            send_ts_us: r.u64()?,
            payload_len: r.0.len(),
        },
        DATA_ACK => Message::DataAck {
            seq: r.u64()?,
            echo_ts_us: r.u64()?,
        },
        VIDEO => {
            let p = VideoPacket {
                seq: r.u32()?,
                frame_id: r.u32()?,
                index: r.u16()?,
                count: r.u16()?,
                frame_ts_us: r.u64()?,
                send_ts_us: r.u64()?,
                payload_len: r.0.len(),
            };
            if p.count == 0 || p.index >= p.count {
                return None;
            }
            Message::Video(p)
        }
        FIN => {
            let mut s = SenderSummary {
                sent_packets: r.u64()?,
                sent_payload_bytes: r.u64()?,
                frames_sent: r.u64()?,
                duration_us: r.u64()?,
                rtt_us: None,
            };
            let rtt = [r.u32()?, r.u32()?, r.u32()?, r.u32()?];
            if rtt != [NONE_U32; 4] {
                s.rtt_us = Some(rtt);
            }
            Message::Fin(s)
        }
        REPORT => Message::Report(ReceiverSummary {
            received_packets: r.u64()?,
            received_payload_bytes: r.u64()?,
            span_us: r.u64()?,
            jitter_us: Some(r.u32()?).filter(|&v| v != NONE_U32),
            frames_complete_in_time: Some(r.u64()?).filter(|&v| v != NONE_U64),
        }),
        _ => return None,
    };
    Some(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: Message) {
        let mut buf = Vec::new();
        encode(PROTOCOL_VERSION, &m, &mut buf);
        assert!(buf.len() <= MAX_DATAGRAM);
        assert_eq!(parse(PROTOCOL_VERSION, &buf), Parsed::Ours(m));
    }

    #[test]
    fn every_message_round_trips() {
        round_trip(Message::Hello {
            heard_you: true,
            profile: PROFILE_VIDEO,
            duration_ms: 5000,
        });
        round_trip(Message::Data {
            seq: 7,
            send_ts_us: 123_456,
            payload_len: MAX_DATAGRAM - DATA_HEADER_LEN,
        });
        round_trip(Message::DataAck {
            seq: 7,
            echo_ts_us: 99,
        });
        round_trip(Message::Video(VideoPacket {
            seq: 1,
            frame_id: 2,
            index: 3,
            count: 4,
            frame_ts_us: 5,
            send_ts_us: 6,
            payload_len: MAX_DATAGRAM - VIDEO_HEADER_LEN,
        }));
        round_trip(Message::Fin(SenderSummary {
            sent_packets: 1,
            sent_payload_bytes: 2,
            frames_sent: 3,
            duration_us: 4,
            rtt_us: Some([1, 2, 3, 4]),
        }));
        round_trip(Message::Fin(SenderSummary::default()));
        round_trip(Message::Report(ReceiverSummary {
            received_packets: 1,
            received_payload_bytes: 2,
            span_us: 5,
            jitter_us: Some(3),
            frames_complete_in_time: Some(4),
        }));
        round_trip(Message::Report(ReceiverSummary::default()));
    }

    #[test]
    fn other_versions_and_strangers_are_told_apart() {
        let mut buf = Vec::new();
        let hello = Message::Hello {
            heard_you: false,
            profile: PROFILE_DATA,
            duration_ms: 1,
        };
        encode(2, &hello, &mut buf);
        assert_eq!(parse(1, &buf), Parsed::OtherVersion(2));
        assert_eq!(
            parse(1, b"\x00\x01\x00\x00\x21\x12\xa4\x42"),
            Parsed::NotOurs
        );
        assert_eq!(parse(1, &[]), Parsed::NotOurs);
        encode(1, &hello, &mut buf);
        buf.truncate(buf.len() - 1);
        assert_eq!(parse(1, &buf), Parsed::Malformed);
        // Never mistaken for STUN by an ICE agent: no magic cookie at 4..8.
        assert_ne!(&buf[4..8], &[0x21, 0x12, 0xa4, 0x42]);
    }
}
