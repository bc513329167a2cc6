//! Binding a listen address. An unspecified address (`0.0.0.0` or `[::]`) means "every
//! address of this host": one `[::]` socket with `IPV6_V6ONLY` off takes IPv4 and IPv6 alike,
//! so an IPv6-only cluster reaches the admin port as well as an IPv4 one does. A host with
//! IPv6 disabled gets `0.0.0.0`. A specific address binds just that address.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// Tokio's own backlog for `TcpListener::bind`; connections waiting for a free slot under
/// the connection cap queue here.
const BACKLOG: i32 = 1024;

/// Listens on `addr`, widening an unspecified address to both families (see the module doc).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    if !addr.ip().is_unspecified() {
        return listen(addr, false);
    }
    let any6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, addr.port()));
    match listen(any6, true) {
        Err(e) if ipv6_unavailable(&e) => {
            tracing::info!(%addr, error = %e, "no IPv6 on this host; listening on IPv4 only");
            listen(
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port())),
                false,
            )
        }
        bound => bound,
    }
}

/// Whether the error says this host cannot do IPv6 at all (the kernel was booted without it,
/// or it is switched off), as opposed to a taken port or a missing permission.
fn ipv6_unavailable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
    )
}

fn listen(addr: SocketAddr, dual_stack: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if dual_stack {
        // Explicit, not the host's default: `net.ipv6.bindv6only` may be 1.
        socket.set_only_v6(false)?;
    }
    // As tokio's `TcpListener::bind` does: a restart must not wait out TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unspecified_address_takes_both_families() {
        let listener = bind("0.0.0.0:0".parse().unwrap()).unwrap();
        let local = listener.local_addr().unwrap();
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, local.port()));
        tokio::net::TcpStream::connect(v4).await.unwrap();
        if local.is_ipv6() {
            let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, local.port()));
            tokio::net::TcpStream::connect(v6).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_specific_address_binds_just_that() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(listener.local_addr().unwrap().is_ipv4());
    }
}
