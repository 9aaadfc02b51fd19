//! Runs transactions on one tokio UDP socket until all are done.

use std::time::Instant;

use tokio::net::UdpSocket;

use super::Transaction;

/// Sends, retransmits and matches answers for `txs` on `sock` until every
/// transaction has an outcome (each is bounded by its own deadline).
/// Datagrams that answer none of them are ignored.
pub async fn run_on_socket(sock: &UdpSocket, txs: &mut [Transaction]) -> std::io::Result<()> {
    let mut buf = vec![0u8; 2048];
    loop {
        let now = Instant::now();
        for t in txs.iter_mut() {
            if let Some((to, bytes)) = t.poll_transmit(now) {
                // A send error (unreachable network...) is a lost request:
                // the transaction retransmits and then times out.
                let _ = sock.send_to(bytes, to).await;
            }
        }
        let Some(wake) = txs.iter().filter_map(|t| t.poll_timeout()).min() else {
            return Ok(());
        };
        let wake = tokio::time::Instant::from_std(wake);
        match tokio::time::timeout_at(wake, sock.recv_from(&mut buf)).await {
            Err(_) => {
                let now = Instant::now();
                for t in txs.iter_mut() {
                    t.handle_timeout(now);
                }
            }
            Ok(Ok((n, from))) => {
                let now = Instant::now();
                for t in txs.iter_mut() {
                    if t.handle_datagram(now, from, &buf[..n]) {
                        break;
                    }
                }
            }
            // ICMP errors (port unreachable) surface as recv errors on
            // Linux; the transactions keep their own schedule.
            Ok(Err(_)) => {
                tokio::time::sleep_until(
                    wake.min(tokio::time::Instant::now() + std::time::Duration::from_millis(5)),
                )
                .await
            }
        }
    }
}
