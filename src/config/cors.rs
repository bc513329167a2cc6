//! The `[cors]` section: the web pages (origins) that may read the sidecar's answers from a
//! browser (`crate::server::cors`). None by default; `["*"]` allows every one, as DynamoDB.

use super::raw::RawCors;
use super::{ConfigError, invalid};
use crate::server::cors::AllowedOrigins;

pub(super) fn allowed_origins(raw: Option<&RawCors>) -> Result<AllowedOrigins, ConfigError> {
    let mut allowed = AllowedOrigins::default();
    let listed = raw
        .and_then(|c| c.allowed_origins.as_deref())
        .unwrap_or_default();
    for (i, origin) in listed.iter().enumerate() {
        if origin == "*" {
            allowed.any = true;
            continue;
        }
        let key = format!("cors.allowed_origins[{i}]");
        let uri: http::Uri = origin.parse().map_err(|_| {
            invalid(
                &key,
                format!("`{origin}` is not an origin like https://app.example.com"),
            )
        })?;
        // An origin is scheme, host and port, as a browser sends it: no path, no slash.
        let bare = matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some()
            && !origin.ends_with('/')
            && uri
                .path_and_query()
                .is_none_or(|p| p.as_str() == "/" || p.as_str().is_empty());
        if !bare {
            return Err(invalid(
                key,
                format!(
                    "`{origin}` is not an origin like https://app.example.com (scheme and host, no path) or *"
                ),
            ));
        }
        allowed.origins.push(origin.clone());
    }
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(origins: &[&str]) -> Result<AllowedOrigins, ConfigError> {
        allowed_origins(Some(&RawCors {
            allowed_origins: Some(origins.iter().map(|o| (*o).to_owned()).collect()),
        }))
    }

    #[test]
    fn origins_are_bare_or_a_star() {
        assert_eq!(allowed_origins(None).unwrap(), AllowedOrigins::default());
        let allowed = parse(&["https://app.example.com", "http://localhost:3000"]).unwrap();
        assert_eq!(allowed.origins.len(), 2);
        assert!(!allowed.any);
        assert!(parse(&["*"]).unwrap().any);
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://a.test/x",
            "ftp://a.test",
        ] {
            let err = parse(&[bad]).unwrap_err().to_string();
            assert!(err.contains("cors.allowed_origins[0]"), "{err}");
        }
    }
}
