//! Cluster addresses: `ballista://host[:port]` and `host[:port]`, parsed in one place
//! for the pipeline's `engine`, the driver and the executor's `--scheduler`.

/// The port of a Ballista scheduler when an address gives none.
pub const DEFAULT_PORT: u16 = 50050;

/// A host and port; an IPv6 host keeps its brackets (`[::1]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or address.
    pub host: String,
    /// Port, from 1 to 65535.
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Parses `host[:port]` (`[v6]:port` for an IPv6 address), taking `default_port`
/// when none is given; the error says what is wrong.
pub fn parse(address: &str, default_port: Option<u16>) -> Result<HostPort, String> {
    let address = address.trim();
    // `[::1]:50050`: the port is what follows the bracket.
    let (host, port) = match address.strip_prefix('[') {
        Some(bracketed) => {
            let (inside, after) = bracketed
                .split_once(']')
                .ok_or("an IPv6 address needs its closing `]`")?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or("expected `:port` after `]`")?,
                ),
            };
            (format!("[{inside}]"), port)
        }
        None => match address.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (address.to_string(), None),
        },
    };
    if host.is_empty() || host == "[]" {
        return Err("no host".into());
    }
    let port = match port {
        None => default_port.ok_or("no port: write `host:port`")?,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("the port {port:?} is not a number from 1 to 65535"))?,
    };
    Ok(HostPort { host, port })
}

/// Parses a scheduler's URL, `ballista://host[:port]` ([`DEFAULT_PORT`] when absent).
pub fn parse_url(url: &str) -> Result<HostPort, String> {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("write `ballista://host:port`".into());
    };
    if scheme != "ballista" {
        return Err(format!(
            "the scheme is `{scheme}`: only `ballista://` clusters are supported"
        ));
    }
    let address = rest.strip_suffix('/').unwrap_or(rest);
    if let Some(c) = address.chars().find(|c| matches!(c, '/' | '?' | '#' | '@')) {
        return Err(format!(
            "`{c}` in the address: give the scheduler's host and port alone"
        ));
    }
    parse(address, Some(DEFAULT_PORT)).map_err(|why| match why.as_str() {
        "no host" => "no host: write `ballista://host:port`".into(),
        _ => why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(host: &str, port: u16) -> HostPort {
        HostPort {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_hosts_ports_and_urls() {
        assert_eq!(parse("10.0.0.5:7000", None), Ok(at("10.0.0.5", 7000)));
        assert_eq!(parse("sched", Some(DEFAULT_PORT)), Ok(at("sched", 50050)));
        assert_eq!(parse("[::1]:7000", None), Ok(at("[::1]", 7000)));
        assert_eq!(parse("[::1]", Some(1)).unwrap().to_string(), "[::1]:1");
        assert_eq!(parse_url("ballista://sched:7000/"), Ok(at("sched", 7000)));
        assert_eq!(parse_url("ballista://[::1]"), Ok(at("[::1]", 50050)));
    }

    #[test]
    fn says_what_is_wrong() {
        assert_eq!(
            parse("sched", None).unwrap_err(),
            "no port: write `host:port`"
        );
        assert_eq!(parse(":1", None).unwrap_err(), "no host");
        assert_eq!(parse("[]:1", None).unwrap_err(), "no host");
        assert!(
            parse("h:port", None)
                .unwrap_err()
                .contains("\"port\" is not a number")
        );
        assert!(parse("h:0", None).unwrap_err().contains("from 1 to 65535"));
        assert!(
            parse("[::1]7000", None)
                .unwrap_err()
                .contains("`:port` after `]`")
        );
        assert!(parse("[::1", None).unwrap_err().contains("closing `]`"));
        assert_eq!(
            parse_url("sched:1").unwrap_err(),
            "write `ballista://host:port`"
        );
        assert!(
            parse_url("df://h:1")
                .unwrap_err()
                .contains("the scheme is `df`")
        );
        assert!(
            parse_url("ballista://h:1/jobs")
                .unwrap_err()
                .contains("`/` in the address")
        );
        assert_eq!(
            parse_url("ballista://").unwrap_err(),
            "no host: write `ballista://host:port`"
        );
    }
}
