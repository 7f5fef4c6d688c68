//! A Pipe's route to its endpoint as the technician gives it: `--ca-file` read and
//! checked, `--proxy` (or `--proxy-stdin`, so a proxy password never is an argument).

use super::{Failure, read_secret_stdin};

/// A Pipe's `--ca-file` and `--proxy` as given: the CA file's text, the proxy URL;
/// an empty value (`off`) removes the setting.
pub(super) struct RouteArgs {
    pub(super) ca_pem: Option<String>,
    pub(super) proxy: Option<crate::secret::Secret>,
}

impl RouteArgs {
    pub(super) fn from_args(
        ca_file: &Option<String>,
        proxy: &Option<String>,
        proxy_stdin: bool,
        secret_stdin: bool,
    ) -> Result<RouteArgs, Failure> {
        let ca_pem = match ca_file.as_deref() {
            None => None,
            Some("off") => Some(String::new()),
            Some(path) => {
                let pem = std::fs::read_to_string(path).map_err(|e| {
                    Failure::usage(format!("--ca-file {path}: cannot read it: {e}"))
                })?;
                crate::store::destination::check_ca_pem(&pem)
                    .map_err(|e| Failure::usage(format!("--ca-file {path}: {}", e.0)))?;
                Some(pem)
            }
        };
        let proxy = match (proxy.as_deref(), proxy_stdin) {
            (Some(_), true) => {
                return Err(Failure::usage(
                    "give the proxy either as --proxy URL or on standard input with --proxy-stdin, not both",
                ));
            }
            (None, false) => None,
            (Some("off"), false) => Some(String::new()),
            (Some(url), false) => {
                if url::Url::parse(url).is_ok_and(|u| u.password().is_some()) {
                    return Err(Failure::usage(
                        "--proxy: a password on the command line is visible to every user of this box; pass the URL on standard input instead, e.g. printf '%s' \"$PROXY_URL\" | ftpgate pipe ... --proxy-stdin",
                    ));
                }
                Some(url.to_string())
            }
            (None, true) if secret_stdin => {
                return Err(Failure::usage(
                    "--proxy-stdin and --secret-key-stdin both read standard input: set one, then the other with 'ftpgate pipe set ID'",
                ));
            }
            (None, true) => Some(read_secret_stdin("proxy URL", "--proxy-stdin")?),
        };
        if let Some(url) = proxy.as_deref().filter(|u| !u.is_empty()) {
            crate::store::destination::check_proxy(url)
                .map_err(|e| Failure::usage(format!("--proxy: {}", e.0)))?;
        }
        Ok(RouteArgs {
            ca_pem,
            proxy: proxy.map(Into::into),
        })
    }
}
