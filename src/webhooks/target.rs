//! Where a webhook may send: an `http` or `https` URL with a host and no credentials, that
//! resolves to public addresses only, unless the server allows private ones
//! (`--allow-private-webhooks`). The addresses are checked as resolved, and the connection is
//! made to the addresses checked ([`CheckedResolver`]), so a name that resolves to a public
//! address when checked and to a private one a moment later (DNS rebinding) cannot reach
//! inside.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// The longest URL a webhook may have.
pub const MAX_URL_BYTES: usize = 2048;

/// Why a URL cannot be a webhook's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadUrl {
    #[error("the URL is longer than {MAX_URL_BYTES} bytes")]
    TooLong,
    #[error("'{0}' is not a URL")]
    NotAUrl(String),
    #[error("a webhook's URL is http or https, not {0}")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("a webhook's URL carries no credentials (user:password@)")]
    Credentials,
}

/// Checks a URL's form; where it leads is checked when it is used.
pub fn check_url(text: &str) -> Result<(), BadUrl> {
    if text.len() > MAX_URL_BYTES {
        return Err(BadUrl::TooLong);
    }
    let uri: Uri = text.parse().map_err(|_| BadUrl::NotAUrl(text.to_owned()))?;
    let scheme = uri
        .scheme_str()
        .ok_or_else(|| BadUrl::NotAUrl(text.to_owned()))?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(BadUrl::Scheme(scheme.to_owned()));
    }
    let authority = uri.authority().ok_or(BadUrl::NoHost)?;
    if authority.as_str().contains('@') {
        return Err(BadUrl::Credentials);
    }
    if authority.host().is_empty() {
        return Err(BadUrl::NoHost);
    }
    Ok(())
}

/// Whether an address is anything but a public unicast one on the internet: loopback,
/// private, shared (carrier-grade NAT), link-local, unspecified, broadcast, multicast,
/// reserved or documentation ranges, the old 6to4 relays' anycast; an IPv6 address that carries
/// an IPv4 one (mapped, compatible, NAT64, 6to4) is judged by it.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => is_private_v6(v6),
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", 0.0.0.0 included
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (a == 100 && (b & 0xc0) == 64) // shared address space, 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (deprecated), 192.88.99.0/24
        || (a == 198 && (b & 0xfe) == 18) // benchmarking, 198.18.0.0/15
        || ip.is_documentation()
        || ip.is_multicast()
        || a >= 240 // reserved, and the broadcast address
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let o = ip.octets();
    let v4 = |at: [usize; 4]| Ipv4Addr::new(o[at[0]], o[at[1]], o[at[2]], o[at[3]]);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_private_v4(v4);
    }
    // NAT64's well-known prefix, 64:ff9b::/96, reaches the IPv4 address it carries.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_private_v4(v4([12, 13, 14, 15]));
    }
    // NAT64's local-use prefix, 64:ff9b:1::/48, is cut by each network to /48, /56, /64 or
    // /96, which puts the IPv4 address in a different place (RFC 6052, octet 8 skipped): a
    // name cannot say which, so every place must hold a public address.
    if s[..3] == [0x64, 0xff9b, 1] {
        return [
            [6, 7, 9, 10],
            [7, 9, 10, 11],
            [9, 10, 11, 12],
            [12, 13, 14, 15],
        ]
        .into_iter()
        .any(|at| is_private_v4(v4(at)));
    }
    // 6to4, 2002:a.b.c.d::/48, reaches the IPv4 address it carries, through a relay.
    if s[0] == 0x2002 {
        return is_private_v4(v4([2, 3, 4, 5]));
    }
    // IPv4-compatible (deprecated): ::a.b.c.d; :: and ::1 among them. IPv4-translated
    // (SIIT), ::ffff:0:a.b.c.d, is a translator's own address, never a receiver's.
    if s[..6] == [0; 6] || s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return true;
    }
    (s[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
        || ip.is_multicast()
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation, 2001:db8::/32
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments, 2001::/23
        || s[0] == 0x0100 && s[1..4] == [0, 0, 0] // discard-only, 100::/64
}

/// Resolves as ureq does, then drops the private addresses unless they are allowed: ureq
/// connects only to what this returns. A name left with no address is refused with an error
/// of kind [`io::ErrorKind::PermissionDenied`], which the delivery reports as a refusal.
#[derive(Debug)]
pub struct CheckedResolver {
    pub allow_private: bool,
}

impl Resolver for CheckedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let resolved = DefaultResolver::default().resolve(uri, config, timeout)?;
        if self.allow_private {
            return Ok(resolved);
        }
        let mut public = self.empty();
        for address in resolved.iter().filter(|a| !is_private(a.ip())) {
            public.push(*address);
        }
        if public.is_empty() {
            let addresses: Vec<String> = resolved.iter().map(|a| a.ip().to_string()).collect();
            return Err(ureq::Error::Io(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "refused: {} is a private address, and the server does not allow them \
                     (--allow-private-webhooks)",
                    addresses.join(", ")
                ),
            )));
        }
        Ok(public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private(text: &str) -> bool {
        is_private(text.parse().unwrap())
    }

    #[test]
    fn private_and_public_ipv4() {
        for address in [
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "192.88.99.1",
        ] {
            assert!(private(address), "{address}");
        }
        for address in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "93.184.216.34",
        ] {
            assert!(!private(address), "{address}");
        }
    }

    #[test]
    fn private_and_public_ipv6_with_the_ipv4_they_carry() {
        for address in [
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::10.0.0.1",
            "::127.0.0.1",
            "100::1",
            "::ffff:0:8.8.8.8",
            "::ffff:0:10.0.0.1",
            "2002:7f00:1::1",
            "2002:a00:1::",
            "2002:a9fe:a9fe::1",
            "2002:c058:6301::1",
            "64:ff9b:1::10.0.0.1",
            "64:ff9b:1:7f00:1::",
            "64:ff9b:1:7f:0:100::",
            "64:ff9b:1:0:7f:0:1::",
        ] {
            assert!(private(address), "{address}");
        }
        for address in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
            "64:ff9b:1:808:8:808:808:808",
        ] {
            assert!(!private(address), "{address}");
        }
    }

    #[test]
    fn urls_are_http_or_https_with_a_host_and_no_credentials() {
        assert_eq!(check_url("https://hooks.example.com/presence"), Ok(()));
        assert_eq!(check_url("http://127.0.0.1:9000/x?y=1"), Ok(()));
        assert_eq!(check_url("HTTPS://example.com"), Ok(()));
        assert_eq!(
            check_url("ftp://example.com/"),
            Err(BadUrl::Scheme("ftp".into()))
        );
        assert_eq!(
            check_url("https://me:pw@example.com/"),
            Err(BadUrl::Credentials)
        );
        assert!(matches!(
            check_url("example.com/x"),
            Err(BadUrl::NotAUrl(_))
        ));
        assert!(matches!(check_url("not a url"), Err(BadUrl::NotAUrl(_))));
        assert!(matches!(check_url("/relative"), Err(BadUrl::NotAUrl(_))));
        assert_eq!(
            check_url(&format!(
                "https://example.com/{}",
                "a".repeat(MAX_URL_BYTES)
            )),
            Err(BadUrl::TooLong)
        );
    }
}
