//! Pipe records: a destination with its settings.

use serde::{Deserialize, Serialize};

use super::schema::{GRANTS, PIPES};
use super::{Error, Result, View, Writer, all_records, encode, one_record};
use crate::store::destination::Destination;
use crate::store::namespace::Overwrite;

/// S3 connection settings of a Pipe whose destination is `s3://`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Settings {
    /// `http(s)://host[:port]`; none means AWS for the region.
    #[serde(default)]
    pub endpoint: Option<String>,
    pub region: String,
    #[serde(default)]
    pub path_style: bool,
    pub access_key: String,
    /// Never shown, never logged, exported only with `--include-secrets`.
    pub secret_key: crate::secret::Secret,
    /// PEM certificates of the CAs that sign the endpoint's certificate (`--ca-file`);
    /// none: the public web PKI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// `http://[user:password@]host:port` (`--proxy`); none: `HTTPS_PROXY`/`HTTP_PROXY`
    /// of the daemon's environment, if set. Shown only with the password replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<crate::secret::Secret>,
}

/// A destination and how uploads to it are handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipe {
    pub id: String,
    pub name: String,
    pub dest: Destination,
    #[serde(default)]
    pub s3: Option<S3Settings>,
    #[serde(default)]
    pub overwrite: Overwrite,
    /// An upload into a missing directory creates it (and its parents), as `MKD` would.
    /// Pipes stored before this setting existed have it off.
    #[serde(default)]
    pub create_dirs: bool,
    pub enabled: bool,
    #[serde(default)]
    pub created: u64,
    /// Deliveries at once; `None`: the destination's default ([`Pipe::parallel`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<u32>,
    /// Seconds delivered files stay in the namespace (`--keep-delivered`); `None`: the
    /// default, [`crate::store::catalog::expire::DEFAULT_KEEP_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_delivered: Option<u64>,
    /// A `file://` destination's root holds the marker, and must (see `forward::dir`).
    /// False for Pipes made before markers existed, until they are adopted.
    #[serde(default)]
    pub dest_marked: bool,
}

/// Most deliveries at once a Pipe may ask for.
pub const MAX_PARALLEL: u32 = 64;

impl Pipe {
    /// Deliveries this Pipe runs at once. S3 is an HTTP service that serves many
    /// requests in parallel and each costs a round trip, so it gets 8 by default; a
    /// directory is one disk, where a few writers overlap their fsyncs and more only
    /// queue, so it gets 2.
    pub fn parallel(&self) -> usize {
        let default = if self.dest.is_s3() { 8 } else { 2 };
        self.parallel.map_or(default, |n| n.clamp(1, MAX_PARALLEL)) as usize
    }

    /// How long delivered files stay in this Pipe's namespace, in ms.
    pub fn keep_delivered_ms(&self) -> u64 {
        self.keep_delivered
            .map_or(crate::store::catalog::expire::DEFAULT_KEEP_MS, |s| {
                s.saturating_mul(1000)
            })
    }
}

pub(super) fn get(v: &impl View, id: &str) -> Result<Option<Pipe>> {
    one_record(&v.table(PIPES)?, "pipes", id)
}

pub(super) fn all(v: &impl View) -> Result<Vec<Pipe>> {
    all_records(&v.table(PIPES)?, "pipes")
}

impl Writer {
    /// Inserts or replaces a Pipe.
    pub fn put_pipe(&self, p: &Pipe) -> Result<()> {
        crate::names::check_pipe_id(&p.id)?;
        crate::names::check_pipe_name(&p.name)?;
        self.txn
            .open_table(PIPES)?
            .insert(p.id.as_str(), encode(p).as_slice())?;
        Ok(())
    }

    /// Removes a Pipe, every Grant of it, and its whole namespace: catalog, queued ops,
    /// partial uploads. Returns the spool bodies to delete once this commits (they are in
    /// `GARBAGE` already), so that nothing of it counts against the spool any more and a
    /// new Pipe with the same id starts empty.
    ///
    /// A Pipe with acknowledged uploads not yet delivered (or any queued op) is removed
    /// only with `discard_backlog`: otherwise [`Error::PipeHasBacklog`] says what would
    /// be lost.
    pub fn remove_pipe(&self, id: &str, discard_backlog: bool) -> Result<Vec<String>> {
        let b = self.backlog(id)?;
        if b.ops > 0 && !discard_backlog {
            return Err(Error::PipeHasBacklog {
                id: id.to_string(),
                files: b.puts,
                bytes: b.bytes,
                ops: b.ops,
                parked: b.parked,
            });
        }
        if self.txn.open_table(PIPES)?.remove(id)?.is_none() {
            return Err(Error::NoSuchPipe(id.to_string()));
        }
        let all = self.grants()?;
        let mut grants = self.txn.open_table(GRANTS)?;
        for (sender, pipe) in all {
            if pipe == id {
                grants.remove((sender.as_str(), pipe.as_str()))?;
            }
        }
        drop(grants);
        self.forget_namespace(id)
    }
}

/// A Pipe as a technician describes it: the input of `pipe add`, `pipe set` and
/// `apply`, and the output of `export`. [`PipeSpec::build`] validates it into a [`Pipe`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub dest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default)]
    pub path_style: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<crate::secret::Secret>,
    /// PEM certificates of the CAs that sign the endpoint's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Proxy URL; exported with its password as `***` unless secrets are included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<crate::secret::Secret>,
    #[serde(default)]
    pub overwrite: Overwrite,
    /// On unless said otherwise, for new Pipes.
    #[serde(default = "yes")]
    pub create_dirs: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<u32>,
    /// How long delivered files stay listed, as a duration (`0s`, `90s`, `12h`, `7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_delivered: Option<String>,
}

fn yes() -> bool {
    true
}

pub const DEFAULT_REGION: &str = "us-east-1";

impl PipeSpec {
    /// The spec of an existing Pipe; the secret only when asked for.
    pub fn of(p: &Pipe, with_secret: bool) -> PipeSpec {
        let s3 = p.s3.as_ref();
        PipeSpec {
            id: Some(p.id.clone()),
            name: p.name.clone(),
            dest: p.dest.to_string(),
            endpoint: s3.and_then(|s| s.endpoint.clone()),
            region: s3.map(|s| s.region.clone()),
            path_style: s3.is_some_and(|s| s.path_style),
            access_key: s3.map(|s| s.access_key.clone()),
            secret_key: s3.filter(|_| with_secret).map(|s| s.secret_key.clone()),
            ca_pem: s3.and_then(|s| s.ca_pem.clone()),
            proxy: s3.and_then(|s| s.proxy.as_ref()).map(|u| {
                if with_secret {
                    u.clone()
                } else {
                    crate::store::destination::redact_proxy(u.expose()).into()
                }
            }),
            overwrite: p.overwrite,
            create_dirs: p.create_dirs,
            enabled: p.enabled,
            parallel: p.parallel,
            keep_delivered: p.keep_delivered.map(crate::duration::format),
        }
    }

    /// Validates into a Pipe with `id`. A missing secret falls back to `old_secret` (the
    /// Pipe's current one), so exports without secrets can be applied.
    pub fn build(
        self,
        id: String,
        old_secret: Option<crate::secret::Secret>,
        created: u64,
    ) -> Result<Pipe, crate::names::Invalid> {
        use crate::names::{Invalid, check_pipe_id, check_pipe_name};
        check_pipe_id(&id)?;
        check_pipe_name(&self.name)?;
        let dest = Destination::parse(&self.dest)?;
        let keep_delivered = match &self.keep_delivered {
            Some(d) => Some(
                crate::duration::parse(d)
                    .map_err(|e| Invalid(format!("keep-delivered: {}", e.0)))?,
            ),
            None => None,
        };
        if let Some(n) = self.parallel
            && !(1..=MAX_PARALLEL).contains(&n)
        {
            return Err(Invalid(format!(
                "--parallel {n} is out of range: give 1 to {MAX_PARALLEL} deliveries at once"
            )));
        }
        let s3 = match dest.is_s3() {
            true => Some(self.s3_settings(old_secret)?),
            false => {
                self.no_s3_flags()?;
                None
            }
        };
        Ok(Pipe {
            id,
            name: self.name,
            dest,
            s3,
            overwrite: self.overwrite,
            create_dirs: self.create_dirs,
            enabled: self.enabled,
            created,
            parallel: self.parallel,
            keep_delivered,
            dest_marked: false,
        })
    }

    /// An s3:// Pipe's settings, checked: endpoint, region, credentials (the secret
    /// falling back to `old_secret`), CA file and proxy.
    fn s3_settings(
        &self,
        old_secret: Option<crate::secret::Secret>,
    ) -> Result<S3Settings, crate::names::Invalid> {
        use crate::names::Invalid;
        use crate::store::destination::{check_ca_pem, check_endpoint, check_proxy};
        if let Some(e) = &self.endpoint {
            check_endpoint(e)?;
        }
        let region = self
            .region
            .clone()
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(Invalid(format!(
                "invalid region {region:?}: use a name such as eu-central-1"
            )));
        }
        let access_key = self.access_key.clone().filter(|k| !k.is_empty()).ok_or_else(|| {
            Invalid("an s3:// destination needs credentials: pass --access-key and --secret-key-stdin, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into())
        })?;
        if access_key
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Invalid(
                "invalid access key: it may not contain spaces or control characters".into(),
            ));
        }
        let secret_key = self.secret_key.clone().or(old_secret).filter(|k| !k.is_empty()).ok_or_else(|| {
            Invalid("no secret key for the s3:// destination: pass --secret-key-stdin, or set AWS_SECRET_ACCESS_KEY (export with --include-secrets to carry it in a fleet file)".into())
        })?;
        if let Some(pem) = &self.ca_pem {
            check_ca_pem(pem)?;
        }
        if let Some(proxy) = &self.proxy {
            check_proxy(proxy.expose())?;
        }
        Ok(S3Settings {
            endpoint: self
                .endpoint
                .as_ref()
                .map(|e| e.trim_end_matches('/').to_string()),
            region,
            path_style: self.path_style,
            access_key,
            secret_key,
            ca_pem: self.ca_pem.clone(),
            proxy: self.proxy.clone(),
        })
    }

    /// A directory Pipe refuses the flags that only mean something for S3.
    fn no_s3_flags(&self) -> Result<(), crate::names::Invalid> {
        let s3_only = [
            ("--endpoint", self.endpoint.is_some()),
            ("--region", self.region.is_some()),
            ("--path-style", self.path_style),
            ("--access-key", self.access_key.is_some()),
            ("--secret-key-stdin", self.secret_key.is_some()),
            ("--ca-file", self.ca_pem.is_some()),
            ("--proxy", self.proxy.is_some()),
        ];
        match s3_only.iter().find(|(_, set)| *set) {
            Some((flag, _)) => Err(crate::names::Invalid(format!(
                "{flag} applies only to s3:// destinations, and {} is a directory",
                self.dest
            ))),
            None => Ok(()),
        }
    }
}
