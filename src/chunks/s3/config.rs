//! Where the S3 engine stores and how it signs in: `s3://bucket/prefix` and the endpoint,
//! region and credentials, from the environment (`PLAIT_S3_*` first, then the usual `AWS_*`).
//!
//! Pure: parsing and validation only, so every refusal is a clear message before any request.
//! Static credentials are required: without them object_store would ask the EC2 instance
//! metadata service, a network request nobody configured; role-based credentials are not
//! supported yet. Plain `http://` endpoints are accepted on loopback addresses (a local MinIO
//! or SeaweedFS) and elsewhere only with `PLAIT_S3_ALLOW_HTTP=true`: over plain http the
//! request signatures and every byte travel in clear.

use std::net::IpAddr;

use http::Uri;

use super::S3Error;

/// A bucket and a key prefix inside it (no leading or trailing slash; may be empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The prefix every key of this store starts with (`""` or `a/b`).
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://bucket` or `s3://bucket/prefix/…`.
    pub fn parse(url: &str) -> Result<Self, S3Error> {
        let bad = |why: &str| S3Error::Config(format!("--blob-store {url:?}: {why}"));
        let rest = url.strip_prefix("s3://").ok_or_else(|| bad("expected s3://bucket/prefix"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && bucket.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
        if !bucket_ok {
            return Err(bad("the bucket name must be 3-63 lowercase letters, digits, '.' or '-'"));
        }
        let prefix = prefix.trim_end_matches('/');
        for segment in prefix.split('/').filter(|_| !prefix.is_empty()) {
            let ok = !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !ok {
                return Err(bad("prefix segments are letters, digits, '-', '_' or '.', separated by single '/'"));
            }
        }
        Ok(S3Location { bucket: bucket.to_string(), prefix: prefix.to_string() })
    }

    /// The full key of `name` (`prefix/name`, or `name` without a prefix).
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Everything needed to reach a bucket.
#[derive(Clone)]
pub struct S3Config {
    /// Bucket and prefix.
    pub location: S3Location,
    /// The endpoint (`https://host[:port]`); None: AWS's endpoint for the region.
    pub endpoint: Option<String>,
    /// The signing region.
    pub region: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// A session token (temporary credentials), if any.
    pub session_token: Option<String>,
    /// Plain http allowed on a non-loopback endpoint.
    pub allow_http: bool,
    /// `bucket.host` URLs instead of `host/bucket` (path style, the default: what MinIO,
    /// SeaweedFS and custom domains expect).
    pub virtual_hosted: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("S3Config")
            .field("location", &self.location)
            .field("endpoint", &self.endpoint_url())
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The region when none is configured (object_store's default too).
const DEFAULT_REGION: &str = "us-east-1";

fn truthy(value: Option<String>) -> bool {
    value.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

impl S3Config {
    /// The configuration for `url` from the process environment.
    pub fn from_env(url: &str) -> Result<Self, S3Error> {
        Self::from_lookup(url, |name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// The configuration for `url`, reading variables through `var` (tests pass a map).
    pub fn from_lookup(url: &str, var: impl Fn(&str) -> Option<String>) -> Result<Self, S3Error> {
        let location = S3Location::parse(url)?;
        let first = |names: &[&str]| names.iter().find_map(|n| var(n));
        let access_key_id = first(&["PLAIT_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"]);
        let secret_access_key = first(&["PLAIT_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"]);
        let (Some(access_key_id), Some(secret_access_key)) = (access_key_id, secret_access_key) else {
            return Err(S3Error::Config(format!(
                "{location}: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 (or PLAIT_S3_ACCESS_KEY_ID and PLAIT_S3_SECRET_ACCESS_KEY)"
            )));
        };
        let config = S3Config {
            location,
            endpoint: first(&["PLAIT_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]),
            region: first(&["PLAIT_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"])
                .unwrap_or_else(|| DEFAULT_REGION.to_string()),
            access_key_id,
            secret_access_key,
            session_token: first(&["PLAIT_S3_SESSION_TOKEN", "AWS_SESSION_TOKEN"]),
            allow_http: truthy(first(&["PLAIT_S3_ALLOW_HTTP"])),
            virtual_hosted: truthy(first(&["PLAIT_S3_VIRTUAL_HOSTED", "AWS_VIRTUAL_HOSTED_STYLE_REQUEST"])),
        };
        config.check_endpoint()?;
        Ok(config)
    }

    /// A configuration with static credentials (tests and embedding).
    pub fn new(location: S3Location, endpoint: &str, access_key_id: &str, secret_access_key: &str) -> Self {
        S3Config {
            location,
            endpoint: Some(endpoint.to_string()),
            region: DEFAULT_REGION.to_string(),
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
            session_token: None,
            allow_http: false,
            virtual_hosted: false,
        }
    }

    /// The endpoint requests go to, for messages.
    pub fn endpoint_url(&self) -> String {
        match &self.endpoint {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => format!("https://s3.{}.amazonaws.com", self.region),
        }
    }

    /// Whether plain http is allowed for this endpoint: an http endpoint on loopback, or
    /// any with `allow_http`.
    pub fn plain_http(&self) -> bool {
        self.allow_http || self.endpoint.as_deref().is_some_and(is_loopback_http)
    }

    /// Refuses an endpoint that is not an http(s) URL, or plain http where it is not allowed.
    pub fn check_endpoint(&self) -> Result<(), S3Error> {
        let Some(endpoint) = &self.endpoint else { return Ok(()) };
        let bad = |why: String| S3Error::Config(format!("S3 endpoint {endpoint:?}: {why}"));
        let uri: Uri = endpoint.parse().map_err(|e| bad(format!("not a URL ({e})")))?;
        if uri.host().is_none() {
            return Err(bad("no host".into()));
        }
        match uri.scheme_str() {
            Some("https") => Ok(()),
            Some("http") if self.plain_http() => Ok(()),
            Some("http") => Err(bad("plain http to a non-loopback address would send signatures and bytes in clear: \
                 use https, or set PLAIT_S3_ALLOW_HTTP=true if this network is trusted"
                .into())),
            _ => Err(bad("the scheme must be https (or http on loopback)".into())),
        }
    }
}

/// Whether `endpoint` is `http://` to localhost or a loopback address.
fn is_loopback_http(endpoint: &str) -> bool {
    let Ok(uri) = endpoint.parse::<Uri>() else { return false };
    if uri.scheme_str() != Some("http") {
        return false;
    }
    let Some(host) = uri.host() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;

    #[test]
    fn locations_parse_and_bad_ones_are_refused() {
        let l = S3Location::parse("s3://my-bucket/a/b/").unwrap();
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("my-bucket", "a/b"));
        assert_eq!(l.key("chunks/x"), "a/b/chunks/x");
        assert_eq!(l.to_string(), "s3://my-bucket/a/b");
        let bare = S3Location::parse("s3://bucket").unwrap();
        assert_eq!((bare.prefix.as_str(), bare.key("header").as_str()), ("", "header"));
        assert_eq!(S3Location::parse("s3://bucket/").unwrap().prefix, "");
        for bad in
            ["http://bucket/x", "s3://", "s3://ab", "s3://Bucket", "s3://-bucket", "s3://b_u_c", "s3://bucket/a//b"]
        {
            assert!(matches!(S3Location::parse(bad), Err(S3Error::Config(_))), "{bad}");
        }
        for bad in ["s3://bucket/../x", "s3://bucket/a/./b", "s3://bucket/a b", "s3://bucket/é"] {
            assert!(matches!(S3Location::parse(bad), Err(S3Error::Config(_))), "{bad}");
        }
    }

    fn from(vars: &[(&str, &str)]) -> Result<S3Config, S3Error> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        S3Config::from_lookup("s3://bucket/p", |name| map.get(name).cloned())
    }

    #[test]
    fn the_environment_fills_the_configuration_plait_names_first() {
        let c = from(&[
            ("AWS_ACCESS_KEY_ID", "aws-id"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
            ("PLAIT_S3_ACCESS_KEY_ID", "plait-id"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:8333"),
            ("AWS_REGION", "eu-west-3"),
        ])
        .unwrap();
        assert_eq!((c.access_key_id.as_str(), c.secret_access_key.as_str()), ("plait-id", "aws-secret"));
        assert_eq!((c.endpoint_url().as_str(), c.region.as_str()), ("http://127.0.0.1:8333", "eu-west-3"));
        assert!(c.plain_http() && !c.virtual_hosted);
        assert!(!format!("{c:?}").contains("aws-secret"), "the secret is never printed");
        let aws = from(&[("AWS_ACCESS_KEY_ID", "i"), ("AWS_SECRET_ACCESS_KEY", "s")]).unwrap();
        assert_eq!(aws.endpoint_url(), "https://s3.us-east-1.amazonaws.com");
    }

    #[test]
    fn missing_credentials_and_clear_http_elsewhere_are_refused() {
        let err = from(&[("AWS_ACCESS_KEY_ID", "i")]).unwrap_err().to_string();
        assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
        let keys = [("AWS_ACCESS_KEY_ID", "i"), ("AWS_SECRET_ACCESS_KEY", "s")];
        let with = |endpoint: &str, extra: &[(&str, &str)]| {
            let mut vars = keys.to_vec();
            vars.push(("PLAIT_S3_ENDPOINT", endpoint));
            vars.extend_from_slice(extra);
            from(&vars)
        };
        for ok in ["http://localhost:9000", "http://127.0.0.2:9000", "http://[::1]:9000", "https://minio.example"] {
            assert!(with(ok, &[]).is_ok(), "{ok}");
        }
        let err = with("http://10.0.0.5:9000", &[]).unwrap_err().to_string();
        assert!(err.contains("PLAIT_S3_ALLOW_HTTP"), "{err}");
        assert!(with("http://10.0.0.5:9000", &[("PLAIT_S3_ALLOW_HTTP", "true")]).is_ok());
        assert!(with("ftp://host", &[]).is_err());
        assert!(with("not a url", &[]).is_err());
    }
}
