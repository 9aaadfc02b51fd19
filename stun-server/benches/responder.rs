//! ns per request for the responder, and for the same work done with the
//! reference codec (stun-rs): decode the request, build a success with
//! XOR-MAPPED-ADDRESS + FINGERPRINT, encode it.
//!
//! Plain `std::time`: each case is calibrated to ~20 ms per round, run for
//! several rounds, and the median round is reported.
//!
//! `cargo bench -p stun-server --bench responder`

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::stun::{binding_request, change};
use stun_rs::attributes::stun::{Fingerprint, XorMappedAddress};
use stun_rs::{MessageClass, MessageDecoderBuilder, MessageEncoderBuilder, StunMessageBuilder};
use stun_server::responder::{BindingResponder, Outcome, ResponderConfig, Rfc5780, MAX_RESPONSE};

const ROUNDS: usize = 21;
const ROUND_TARGET: Duration = Duration::from_millis(20);

struct Case<'a> {
    name: &'static str,
    f: Box<dyn FnMut() + 'a>,
    /// Iterations per round.
    n: u64,
    samples: Vec<f64>,
}

impl<'a> Case<'a> {
    fn new(name: &'static str, f: impl FnMut() + 'a) -> Self {
        Case {
            name,
            f: Box::new(f),
            n: 1,
            samples: Vec::new(),
        }
    }

    /// Warms up and picks the iteration count for one round.
    fn calibrate(&mut self) {
        let mut n: u64 = 1;
        loop {
            let t = Instant::now();
            for _ in 0..n {
                (self.f)();
            }
            let e = t.elapsed();
            if e >= ROUND_TARGET / 4 {
                let per = e.as_secs_f64() / n as f64;
                self.n = ((ROUND_TARGET.as_secs_f64() / per) as u64).max(1);
                return;
            }
            n *= 2;
        }
    }

    fn round(&mut self) {
        let t = Instant::now();
        for _ in 0..self.n {
            (self.f)();
        }
        self.samples
            .push(t.elapsed().as_nanos() as f64 / self.n as f64);
    }

    /// (median, min) ns/op.
    fn result(&mut self) -> (f64, f64) {
        self.samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (self.samples[self.samples.len() / 2], self.samples[0])
    }
}

/// Times the cases round-robin, so that load from elsewhere on the machine
/// falls on all of them alike.
fn run(cases: &mut [Case<'_>]) {
    for c in cases.iter_mut() {
        c.calibrate();
    }
    for _ in 0..ROUNDS {
        for c in cases.iter_mut() {
            c.round();
        }
    }
}

fn ours<'a>(
    name: &'static str,
    cfg: ResponderConfig,
    req: &'a [u8],
    src: SocketAddr,
    local: SocketAddr,
) -> Case<'a> {
    let r = BindingResponder::new(cfg);
    let mut out = [0u8; MAX_RESPONSE];
    // Check once that this is the path we mean to time.
    assert!(matches!(
        r.respond(req, src, local, &mut out),
        Outcome::Reply { .. }
    ));
    Case::new(name, move || {
        let o = r.respond(black_box(req), black_box(src), local, &mut out);
        black_box(o);
        black_box(&out);
    })
}

fn main() {
    let src: SocketAddr = "192.0.2.1:32853".parse().unwrap();
    let local: SocketAddr = "192.0.2.10:3478".parse().unwrap();
    let tid = [0x5a; 12];
    let mut bare = [0u8; 64];
    let n = binding_request(&mut bare, &tid, 0, None, false).unwrap();
    let bare = &bare[..n];
    let mut fp = [0u8; 64];
    let n = binding_request(&mut fp, &tid, 0, None, true).unwrap();
    let fp = &fp[..n];
    let mut r5 = [0u8; 64];
    let n = binding_request(&mut r5, &tid, change::IP | change::PORT, None, true).unwrap();
    let r5req = &r5[..n];

    let rfc5780 = ResponderConfig {
        rfc5780: Some(Rfc5780 {
            primary: local,
            alternate: "192.0.2.11:3479".parse().unwrap(),
        }),
        ..Default::default()
    };

    // stun-rs: the work of the FINGERPRINT case.
    let decoder = MessageDecoderBuilder::default().build();
    let encoder = MessageEncoderBuilder::default().build();
    let mut out = [0u8; MAX_RESPONSE];
    let stun_rs = |req: &[u8], out: &mut [u8]| -> usize {
        let (msg, _) = decoder.decode(req).expect("stun-rs decodes");
        assert_eq!(msg.class(), MessageClass::Request);
        let resp = StunMessageBuilder::new(msg.method(), MessageClass::SuccessResponse)
            .with_transaction_id(*msg.transaction_id())
            .with_attribute(XorMappedAddress::from(src))
            .with_attribute(Fingerprint::default())
            .build();
        encoder.encode(out, &resp).expect("stun-rs encodes")
    };
    // Same bytes as ours, so the same work.
    let n = stun_rs(fp, &mut out);
    let mut mine = [0u8; MAX_RESPONSE];
    let Outcome::Reply { len, .. } =
        BindingResponder::new(ResponderConfig::default()).respond(fp, src, local, &mut mine)
    else {
        panic!("no reply");
    };
    assert_eq!(out[..n], mine[..len], "stun-rs and ours differ");
    let stun_rs_case = Case::new(
        "stun-rs: decode + XOR-MAPPED + FINGERPRINT + encode",
        move || {
            let n = stun_rs(black_box(fp), &mut out);
            black_box(n);
        },
    );

    let mut cases = [
        ours(
            "ours: bare 20-byte request -> 32 bytes",
            ResponderConfig::default(),
            bare,
            src,
            local,
        ),
        ours(
            "ours: request + FINGERPRINT -> 40 bytes",
            ResponderConfig::default(),
            fp,
            src,
            local,
        ),
        ours(
            "ours: RFC 5780 CHANGE-REQUEST + FINGERPRINT -> 64 B",
            rfc5780,
            r5req,
            src,
            local,
        ),
        stun_rs_case,
    ];
    run(&mut cases);

    println!(
        "responder micro-benchmark: {ROUNDS} interleaved rounds of ~{ROUND_TARGET:?} per case"
    );
    println!("{:<52} {:>12} {:>10}", "case", "median ns/op", "min ns/op");
    let mut medians = Vec::new();
    for c in cases.iter_mut() {
        let (median, min) = c.result();
        println!("{:<52} {:>12.1} {:>10.1}", c.name, median, min);
        medians.push(median);
    }
    let (bare, fp, r5, rs) = (medians[0], medians[1], medians[2], medians[3]);
    println!(
        "ratio stun-rs/ours (medians): {:.1}x for the same work (FINGERPRINT case), \
         {:.1}x vs bare, {:.1}x vs RFC 5780",
        rs / fp,
        rs / bare,
        rs / r5
    );
}
