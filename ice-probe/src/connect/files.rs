//! Signaling through files and pipes (`--local FILE|-`, `--remote FILE|-`).
//!
//! A file holds one complete description (`end_of_candidates: true`),
//! written once gathering ends, atomically (temp file + rename) so the
//! peer never reads half of it. stdout gets the same messages trickled, one
//! JSON line each, flushed as they happen. The remote file is polled until
//! it appears; stdin is read line by line until EOF.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::description::SignalMessage;
use super::link::{Incoming, Link};

/// How often a remote file that is not there yet is looked for.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// `-` or a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Std,
    File(PathBuf),
}

impl Place {
    pub fn parse(s: &str) -> Place {
        if s == "-" {
            Place::Std
        } else {
            Place::File(PathBuf::from(s))
        }
    }
}

/// Starts the writer and the reader. A stale `--local` file from an
/// earlier run is removed first so the peer cannot read it.
pub fn link(local: &Place, remote: &Place) -> Result<Link, String> {
    if let Place::File(p) = local {
        match std::fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(format!("--local {}: cannot replace it: {e}", p.display())),
        }
    }
    let (out_tx, out_rx) = unbounded_channel::<SignalMessage>();
    let (in_tx, in_rx) = unbounded_channel::<Incoming>();
    let writer = match local.clone() {
        Place::Std => tokio::spawn(write_stdout(out_rx, in_tx.clone())),
        Place::File(p) => tokio::spawn(write_file(p, out_rx, in_tx.clone())),
    };
    match remote.clone() {
        Place::Std => tokio::spawn(read_stdin(in_tx)),
        Place::File(p) => tokio::spawn(read_file(p, in_tx)),
    };
    Ok(Link {
        outgoing: out_tx,
        incoming: in_rx,
        assigned_role: None,
        writer: Some(writer),
    })
}

async fn write_stdout(mut rx: UnboundedReceiver<SignalMessage>, fatal: UnboundedSender<Incoming>) {
    let mut out = tokio::io::stdout();
    while let Some(m) = rx.recv().await {
        let mut line = m.to_line();
        line.push('\n');
        let r = async {
            out.write_all(line.as_bytes()).await?;
            out.flush().await
        }
        .await;
        if let Err(e) = r {
            // The peer closed the pipe: nothing more to say to it.
            if e.kind() != ErrorKind::BrokenPipe {
                let _ = fatal.send(Incoming::Fatal(format!(
                    "--local -: cannot write to stdout: {e}"
                )));
            }
            return;
        }
    }
}

/// Collects the trickled messages into one description and writes it when
/// gathering ends (or when we stop early with what we have).
async fn write_file(
    path: PathBuf,
    mut rx: UnboundedReceiver<SignalMessage>,
    fatal: UnboundedSender<Incoming>,
) {
    let mut desc: Option<SignalMessage> = None;
    let mut written = false;
    while let Some(m) = rx.recv().await {
        match (m, &mut desc) {
            (d @ SignalMessage::Description { .. }, None) => desc = Some(d),
            (SignalMessage::Candidate(c), Some(SignalMessage::Description { candidates, .. })) => {
                candidates.push(c)
            }
            (
                SignalMessage::EndOfCandidates,
                Some(SignalMessage::Description {
                    end_of_candidates, ..
                }),
            ) => {
                *end_of_candidates = true;
                if !written {
                    written = true;
                    if let Err(e) = write_atomically(&path, desc.as_ref().expect("set")).await {
                        let _ = fatal.send(Incoming::Fatal(e));
                        return;
                    }
                }
            }
            _ => {}
        }
    }
    if let (false, Some(d)) = (written, desc.as_ref()) {
        if let Err(e) = write_atomically(&path, d).await {
            let _ = fatal.send(Incoming::Fatal(e));
        }
    }
}

async fn write_atomically(path: &Path, m: &SignalMessage) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut line = m.to_line();
    line.push('\n');
    let r = async {
        tokio::fs::write(&tmp, line.as_bytes()).await?;
        tokio::fs::rename(&tmp, path).await
    }
    .await;
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!(
            "--local {}: cannot write our description: {e}",
            path.display()
        )
    })
}

fn feed(line: &str, tx: &UnboundedSender<Incoming>) -> bool {
    if line.trim().is_empty() {
        return true;
    }
    let ev = match SignalMessage::parse_line(line) {
        Ok(m) => Incoming::Message(m),
        Err(e) => Incoming::Bad(e),
    };
    tx.send(ev).is_ok()
}

async fn read_stdin(tx: UnboundedSender<Incoming>) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(l)) => {
                if !feed(&l, &tx) {
                    return;
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = tx.send(Incoming::Bad(super::description::BadMessage(format!(
                    "--remote -: cannot read stdin: {e}"
                ))));
                return;
            }
        }
    }
    let _ = tx.send(Incoming::Closed);
}

async fn read_file(path: PathBuf, tx: UnboundedSender<Incoming>) {
    let text = loop {
        match tokio::fs::read(&path).await {
            Ok(b) => break b,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                let _ = tx.send(Incoming::Fatal(format!(
                    "--remote {}: cannot read it: {e}",
                    path.display()
                )));
                return;
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    let text = String::from_utf8_lossy(&text);
    for l in text.lines() {
        if !feed(l, &tx) {
            return;
        }
    }
    let _ = tx.send(Incoming::Closed);
}
