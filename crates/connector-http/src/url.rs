//! The base URL rule shared by every connector: https anywhere, plain http only to a loopback
//! host (a local simulator or proxy), so that a token never crosses a network in clear text.

use crate::error::HttpError;

/// Checks `url` with the compiler's rule and parses it.
pub fn check_base_url(url: &str) -> Result<reqwest::Url, HttpError> {
    compiler::is_allowed_base_url(url).map_err(HttpError::BaseUrl)?;
    let parsed =
        reqwest::Url::parse(url).map_err(|e| HttpError::BaseUrl(format!("'{url}' is not a valid URL: {e}")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(HttpError::BaseUrl(format!("'{url}' must not carry credentials")));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_to_loopback() {
        assert!(check_base_url("https://training.knowbe4.com").is_ok());
        assert!(check_base_url("http://127.0.0.1:8787").is_ok());
        assert!(check_base_url("http://localhost:1/x").is_ok());
        assert!(check_base_url("http://[::1]:9").is_ok());
        assert!(check_base_url("http://example.com").is_err());
        assert!(check_base_url("ftp://127.0.0.1").is_err());
        assert!(check_base_url("https://user:pw@example.com").is_err());
    }
}
