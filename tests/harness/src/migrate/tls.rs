//! The migration connection's TLS, chosen by the URL's `sslmode` like libpq:
//! `disable` (plain), `prefer` (the default: TLS when the server offers it,
//! else plain), `require` (TLS, certificate not checked) and `verify-full`
//! (TLS, certificate checked against the Mozilla roots and the host name).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::redact;

/// How the connection uses TLS (the URL's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server accepts it, else plain; the certificate is not checked.
    Prefer,
    /// TLS or fail; the certificate is not checked.
    Require,
    /// TLS or fail; the certificate must chain to a Mozilla root and name the host.
    VerifyFull,
}

impl SslMode {
    /// Parses a libpq `sslmode` value this runner supports.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-full" => Ok(Self::VerifyFull),
            other => Err(format!(
                "sslmode={other} is not supported; use disable, prefer, require or verify-full"
            )),
        }
    }
}

/// Removes `sslmode` from a URL's query string, returning the remaining URL
/// and the mode it named (`None` when absent).
pub fn split_sslmode(url: &str) -> Result<(String, Option<SslMode>), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut mode = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", value)) => mode = Some(SslMode::parse(value)?),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, mode))
}

/// Connects to `url` with the TLS its `sslmode` asks for, and drives the
/// connection on a task that ends when the client is dropped.
pub async fn connect(url: &str) -> Result<(Client, tokio::task::JoinHandle<()>), String> {
    let (rest, mode) = split_sslmode(url).map_err(|e| format!("{}: {e}", redact(url)))?;
    let mut config: Config = rest.parse().map_err(|e| {
        format!(
            "{} is not a PostgreSQL connection URL \
             (postgres://USER:PASSWORD@HOST:5432/DATABASE): {e}",
            redact(url)
        )
    })?;
    let mode = mode.unwrap_or(match config.get_ssl_mode() {
        PgSslMode::Disable => SslMode::Disable,
        PgSslMode::Require => SslMode::Require,
        _ => SslMode::Prefer,
    });
    let failed = |e: tokio_postgres::Error| {
        let hint = match mode {
            SslMode::Require => " (sslmode=require: the server must accept TLS)",
            SslMode::VerifyFull => {
                " (sslmode=verify-full: the server must accept TLS and present a \
                 certificate for this host from a public certificate authority)"
            }
            _ => "",
        };
        // The cause (e.g. "server does not support TLS", a certificate error).
        let cause = std::error::Error::source(&e)
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        format!("cannot connect to {}: {e}{cause}{hint}", redact(url))
    };
    if mode == SslMode::Disable {
        config.ssl_mode(PgSslMode::Disable);
        let (client, conn) = config.connect(NoTls).await.map_err(failed)?;
        return Ok((client, tokio::spawn(async move { drop(conn.await) })));
    }
    config.ssl_mode(match mode {
        SslMode::Prefer => PgSslMode::Prefer,
        _ => PgSslMode::Require,
    });
    let tls = MakeRustlsConnect::new(client_config(mode == SslMode::VerifyFull)?);
    let (client, conn) = config.connect(tls).await.map_err(failed)?;
    Ok((client, tokio::spawn(async move { drop(conn.await) })))
}

/// A rustls client configuration on the ring provider; `verify` checks the
/// server certificate against the Mozilla roots, otherwise any certificate is
/// accepted (the connection is encrypted but not authenticated, as libpq's
/// `prefer` and `require`).
fn client_config(verify: bool) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    Ok(if verify {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    })
}

/// Accepts any server certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_modes_and_refuses_others() {
        assert_eq!(SslMode::parse("disable"), Ok(SslMode::Disable));
        assert_eq!(SslMode::parse("prefer"), Ok(SslMode::Prefer));
        assert_eq!(SslMode::parse("require"), Ok(SslMode::Require));
        assert_eq!(SslMode::parse("verify-full"), Ok(SslMode::VerifyFull));
        let err = SslMode::parse("verify-ca").unwrap_err();
        assert!(err.contains("sslmode=verify-ca"), "{err}");
    }

    #[test]
    fn splits_sslmode_out_of_the_query() {
        assert_eq!(
            split_sslmode("postgres://u:p@h:5432/db").unwrap(),
            ("postgres://u:p@h:5432/db".to_string(), None)
        );
        assert_eq!(
            split_sslmode("postgres://u:p@h/db?sslmode=require").unwrap(),
            ("postgres://u:p@h/db".to_string(), Some(SslMode::Require))
        );
        assert_eq!(
            split_sslmode(
                "postgres://h/db?application_name=x&sslmode=verify-full&connect_timeout=5"
            )
            .unwrap(),
            (
                "postgres://h/db?application_name=x&connect_timeout=5".to_string(),
                Some(SslMode::VerifyFull)
            )
        );
        assert!(split_sslmode("postgres://h/db?sslmode=bogus").is_err());
    }

    #[test]
    fn builds_both_client_configurations() {
        assert!(client_config(true).is_ok());
        assert!(client_config(false).is_ok());
    }
}
