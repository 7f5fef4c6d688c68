//! Data-connection addresses (pure): `PORT` (RFC 959), `EPRT`/`EPSV` (RFC 2428), the
//! `PASV`/`EPSV` reply texts, and the active-mode safety check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use crate::net::canonical;

/// Why an address argument was rejected; the text is for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("PORT needs h1,h2,h3,h4,p1,p2 with six numbers from 0 to 255")]
    BadPort,
    #[error("EPRT needs |1|IPv4|port| or |2|IPv6|port|")]
    BadEprt,
    #[error("network protocol not supported, use (1,2)")]
    UnknownProtocol,
}

/// `h1,h2,h3,h4,p1,p2`.
pub fn parse_port(arg: &str) -> Result<SocketAddr, AddrError> {
    let nums: Vec<u8> = arg
        .trim()
        .split(',')
        .map(|n| n.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .map_err(|_| AddrError::BadPort)?;
    let [a, b, c, d, p1, p2] = nums[..] else {
        return Err(AddrError::BadPort);
    };
    let port = u16::from(p1) << 8 | u16::from(p2);
    Ok(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(a, b, c, d),
        port,
    )))
}

/// `<d>proto<d>addr<d>port<d>` with any printable delimiter `d`.
pub fn parse_eprt(arg: &str) -> Result<SocketAddr, AddrError> {
    let delim = arg
        .chars()
        .next()
        .filter(|c| c.is_ascii_graphic())
        .ok_or(AddrError::BadEprt)?;
    let parts: Vec<&str> = arg.split(delim).collect();
    let ["", proto, addr, port, ""] = parts[..] else {
        return Err(AddrError::BadEprt);
    };
    let port: u16 = port.parse().map_err(|_| AddrError::BadEprt)?;
    let ip = match proto {
        "1" => IpAddr::V4(addr.parse::<Ipv4Addr>().map_err(|_| AddrError::BadEprt)?),
        "2" => IpAddr::V6(addr.parse::<Ipv6Addr>().map_err(|_| AddrError::BadEprt)?),
        _ => return Err(AddrError::UnknownProtocol),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Text of the `227` reply.
pub fn pasv_text(ip: Ipv4Addr, port: u16) -> String {
    let [a, b, c, d] = ip.octets();
    format!(
        "Entering Passive Mode ({a},{b},{c},{d},{},{})",
        port >> 8,
        port & 0xff
    )
}

/// Text of the `229` reply.
pub fn epsv_text(port: u16) -> String {
    format!("Entering Extended Passive Mode (|||{port}|)")
}

/// Why an active-mode target is refused (checked before any connection is attempted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActiveRefusal {
    #[error("active mode may only connect back to your own address ({0})")]
    OtherHost(IpAddr),
    #[error("active mode may not use privileged port {0}: use a port of 1024 or above")]
    PrivilegedPort(u16),
}

/// Active mode may only connect back to the control connection's peer, on a port ≥ 1024
/// (the FTP bounce attack, CERT CA-1997-27).
pub fn check_active(target: SocketAddr, control_peer: IpAddr) -> Result<(), ActiveRefusal> {
    if canonical(target.ip()) != canonical(control_peer) {
        return Err(ActiveRefusal::OtherHost(canonical(control_peer)));
    }
    if target.port() < 1024 {
        return Err(ActiveRefusal::PrivilegedPort(target.port()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port() {
        assert_eq!(
            parse_port("127,0,0,1,4,1").unwrap(),
            "127.0.0.1:1025".parse().unwrap()
        );
        assert_eq!(
            parse_port(" 10,0,0,2,255,255").unwrap(),
            "10.0.0.2:65535".parse().unwrap()
        );
        for bad in [
            "",
            "1,2,3,4,5",
            "1,2,3,4,5,6,7",
            "256,0,0,1,1,1",
            "a,b,c,d,e,f",
            "1,2,3,4,5,-6",
        ] {
            assert_eq!(parse_port(bad), Err(AddrError::BadPort), "{bad}");
        }
    }

    #[test]
    fn eprt() {
        assert_eq!(
            parse_eprt("|1|132.235.1.2|6275|").unwrap(),
            "132.235.1.2:6275".parse().unwrap()
        );
        assert_eq!(
            parse_eprt("|2|::1|5282|").unwrap(),
            "[::1]:5282".parse().unwrap()
        );
        assert_eq!(
            parse_eprt("!1!10.0.0.1!2000!").unwrap(),
            "10.0.0.1:2000".parse().unwrap()
        );
        assert_eq!(parse_eprt("|3|x|1|"), Err(AddrError::UnknownProtocol));
        for bad in [
            "",
            "|1|::1|5|",
            "|1|1.2.3.4|70000|",
            "|1|1.2.3.4|5",
            " 1 1.2.3.4 5 ",
            "|2|1.2.3.4|5|",
        ] {
            assert!(parse_eprt(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replies() {
        assert_eq!(
            pasv_text(Ipv4Addr::new(192, 168, 1, 2), 50001),
            "Entering Passive Mode (192,168,1,2,195,81)"
        );
        assert_eq!(
            epsv_text(50001),
            "Entering Extended Passive Mode (|||50001|)"
        );
    }

    #[test]
    fn active_targets() {
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(check_active("127.0.0.1:2000".parse().unwrap(), peer).is_ok());
        assert!(
            check_active(
                "127.0.0.1:2000".parse().unwrap(),
                "::ffff:127.0.0.1".parse().unwrap()
            )
            .is_ok()
        );
        assert_eq!(
            check_active("127.0.0.2:2000".parse().unwrap(), peer),
            Err(ActiveRefusal::OtherHost(peer))
        );
        assert_eq!(
            check_active("127.0.0.1:25".parse().unwrap(), peer),
            Err(ActiveRefusal::PrivilegedPort(25))
        );
    }
}
