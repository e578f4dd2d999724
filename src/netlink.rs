//! LISTEN sockets through netlink `sock_diag` (`inet_diag`), the interface `ss` uses.
//!
//! One dump request per address family (`AF_INET`, then `AF_INET6`), for TCP, with the
//! state filter set to LISTEN only, so the kernel sends back only listening sockets:
//! a handful on most machines, however many connections are open. When a port is
//! given, it goes into the request's `idiag_sport`: the kernel's dump of the listening
//! hash skips every socket bound to another port, so asking about one port costs the
//! same with 1 000 other listeners as with none. (`netlink-packet-sock-diag` 0.5 has no
//! type for an `INET_DIAG_REQ_BYTECODE` filter; `idiag_sport` needs none. The port is
//! checked again here, in case a kernel ignores it.)
//!
//! Messages are built and parsed with the `netlink-packet-*` types only. Any failure
//! (no netlink in a seccomp sandbox, no `inet_diag` module, a message we cannot parse)
//! is an `Err`: the caller falls back to `/proc/net/tcp{,6}`.

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, TCP_LISTEN};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::{Socket, SocketAddr};

/// One LISTEN socket: its inode and local port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListenSocket {
    pub inode: u64,
    pub port: u16,
}

/// The kernel fills a dump datagram up to 32 KiB (less the skb overhead); a larger
/// buffer never truncates one.
const RECV_BUF: usize = 64 * 1024;

/// The LISTEN TCP sockets of this network namespace, IPv4 then IPv6; only those bound
/// to `port` when one is given.
pub(crate) fn listening(port: Option<u16>) -> io::Result<Vec<ListenSocket>> {
    let socket = Socket::new(NETLINK_SOCK_DIAG)?;
    let kernel = SocketAddr::new(0, 0);
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(RECV_BUF);
    for (seq, family) in [(1, AF_INET), (2, AF_INET6)] {
        let request = request(family, port, seq);
        let sent = socket.send_to(&request, &kernel, 0)?;
        if sent != request.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short send to sock_diag",
            ));
        }
        loop {
            buf.clear();
            // MSG_TRUNC: the length returned is the datagram's, so a truncation shows.
            let n = socket.recv(&mut buf, libc::MSG_TRUNC)?;
            if n > buf.capacity() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("sock_diag datagram of {n} bytes truncated"),
                ));
            }
            if parse_datagram(&buf[..n.min(buf.len())], seq, port, &mut out)? == Batch::Done {
                break;
            }
        }
    }
    Ok(out)
}

/// The serialized dump request for one family: TCP, LISTEN only, no extensions.
pub(crate) fn request(family: u8, port: Option<u16>, seq: u32) -> Vec<u8> {
    let mut socket_id = if family == AF_INET6 {
        SocketId::new_v6()
    } else {
        SocketId::new_v4()
    };
    socket_id.source_port = port.unwrap_or(0);
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::LISTEN,
            socket_id,
        })
        .into(),
    );
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

/// Whether a dump goes on after this datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Batch {
    More,
    Done,
}

/// Parses one datagram of a dump (several netlink messages), appending the LISTEN
/// sockets (bound to `port`, when given) of the reply to request `seq`.
pub(crate) fn parse_datagram(
    mut bytes: &[u8],
    seq: u32,
    port: Option<u16>,
    out: &mut Vec<ListenSocket>,
) -> io::Result<Batch> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    while !bytes.is_empty() {
        let message = NetlinkMessage::<SockDiagMessage>::deserialize(bytes)
            .map_err(|e| invalid(format!("sock_diag reply: {e}")))?;
        let len = message.header.length as usize;
        if len == 0 {
            return Err(invalid("sock_diag reply: a message of length 0".into()));
        }
        // Stale replies (another request's) are skipped, not trusted.
        if message.header.sequence_number == seq {
            match message.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                    let h = &response.header;
                    let wanted = port.is_none_or(|p| p == h.socket_id.source_port);
                    if h.state == TCP_LISTEN && h.inode != 0 && wanted {
                        out.push(ListenSocket {
                            inode: u64::from(h.inode),
                            port: h.socket_id.source_port,
                        });
                    }
                }
                NetlinkPayload::Done(done) if done.code < 0 => {
                    return Err(io::Error::from_raw_os_error(-done.code));
                }
                NetlinkPayload::Done(_) => return Ok(Batch::Done),
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                NetlinkPayload::Overrun(_) => {
                    return Err(invalid("sock_diag reply overrun".into()));
                }
                _ => {}
            }
        }
        // Messages are 4-byte aligned (NLMSG_ALIGN).
        let step = (len + 3) & !3;
        bytes = bytes.get(step..).unwrap_or_default();
    }
    Ok(Batch::More)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{DoneMessage, ErrorMessage, NetlinkBuffer, Parseable};
    use netlink_packet_sock_diag::inet::{InetResponse, InetResponseHeader};
    use netlink_packet_sock_diag::SOCK_DIAG_BY_FAMILY;
    use std::num::NonZeroI32;

    fn emit(payload: NetlinkPayload<SockDiagMessage>, seq: u32, into: &mut Vec<u8>) {
        let mut header = NetlinkHeader::default();
        header.sequence_number = seq;
        let mut message = NetlinkMessage::new(header, payload);
        message.finalize();
        let start = into.len();
        into.resize(start + message.buffer_len(), 0);
        message.serialize(&mut into[start..]);
    }

    fn response(family: u8, state: u8, port: u16, inode: u32) -> NetlinkPayload<SockDiagMessage> {
        let mut socket_id = if family == AF_INET6 {
            SocketId::new_v6()
        } else {
            SocketId::new_v4()
        };
        socket_id.source_port = port;
        SockDiagMessage::InetResponse(Box::new(InetResponse {
            header: InetResponseHeader {
                family,
                state,
                timer: None,
                socket_id,
                recv_queue: 0,
                send_queue: 128,
                uid: 0,
                inode,
            },
            nlas: Default::default(),
        }))
        .into()
    }

    fn done(code: i32) -> NetlinkPayload<SockDiagMessage> {
        let mut d = DoneMessage::default();
        d.code = code;
        NetlinkPayload::Done(d)
    }

    #[test]
    fn the_request_is_a_listen_only_tcp_dump_for_the_port() {
        let bytes = request(AF_INET6, Some(8080), 7);
        let header = NetlinkBuffer::new_checked(&bytes[..]).expect("a netlink message");
        assert_eq!(header.message_type(), SOCK_DIAG_BY_FAMILY);
        assert_eq!(header.flags(), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(header.sequence_number(), 7);
        assert_eq!(header.length() as usize, bytes.len());
        // A request and a response share the message type, so `SockDiagMessage` would
        // parse this as a response: read the payload with the request type.
        let request = InetRequest::parse(header.payload()).expect("request parses");
        assert_eq!(request.family, AF_INET6);
        assert_eq!(request.protocol, IPPROTO_TCP);
        assert_eq!(request.states, StateFlags::LISTEN);
        assert_eq!(request.socket_id.source_port, 8080);
        assert_eq!(request.socket_id.destination_port, 0);
    }

    #[test]
    fn a_dump_keeps_listen_sockets_of_the_port_and_ends_at_done() {
        let mut dgram = Vec::new();
        emit(response(AF_INET, TCP_LISTEN, 80, 11), 1, &mut dgram);
        emit(response(AF_INET, 1, 80, 12), 1, &mut dgram); // ESTABLISHED
        emit(response(AF_INET, TCP_LISTEN, 81, 13), 1, &mut dgram);
        emit(response(AF_INET, TCP_LISTEN, 80, 0), 1, &mut dgram); // no inode
        emit(response(AF_INET, TCP_LISTEN, 80, 14), 9, &mut dgram); // stale
        let mut out = Vec::new();
        assert_eq!(
            parse_datagram(&dgram, 1, Some(80), &mut out).unwrap(),
            Batch::More
        );
        assert_eq!(
            out,
            [ListenSocket {
                inode: 11,
                port: 80
            }]
        );

        out.clear();
        assert_eq!(
            parse_datagram(&dgram, 1, None, &mut out).unwrap(),
            Batch::More
        );
        assert_eq!(out.iter().map(|s| s.inode).collect::<Vec<_>>(), [11, 13]);

        let mut end = Vec::new();
        emit(response(AF_INET6, TCP_LISTEN, 443, 21), 2, &mut end);
        emit(done(0), 2, &mut end);
        out.clear();
        assert_eq!(
            parse_datagram(&end, 2, None, &mut out).unwrap(),
            Batch::Done
        );
        assert_eq!(
            out,
            [ListenSocket {
                inode: 21,
                port: 443
            }]
        );
    }

    #[test]
    fn kernel_errors_are_errors() {
        let mut dgram = Vec::new();
        let mut error = ErrorMessage::default();
        error.code = NonZeroI32::new(-libc::ENOENT);
        emit(NetlinkPayload::Error(error), 1, &mut dgram);
        let err = parse_datagram(&dgram, 1, None, &mut Vec::new()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));

        let mut dgram = Vec::new();
        emit(done(-libc::EPERM), 1, &mut dgram);
        let err = parse_datagram(&dgram, 1, None, &mut Vec::new()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut dgram = Vec::new();
        emit(response(AF_INET, TCP_LISTEN, 80, 11), 1, &mut dgram);
        for cut in [3, 17, dgram.len() - 1] {
            assert!(parse_datagram(&dgram[..cut], 1, None, &mut Vec::new()).is_err());
        }
        let mut zero = dgram.clone();
        zero[..4].copy_from_slice(&0u32.to_ne_bytes());
        assert!(parse_datagram(&zero, 1, None, &mut Vec::new()).is_err());
    }
}
