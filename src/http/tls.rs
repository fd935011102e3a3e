//! TLS for the client: one rustls configuration per verification mode, shared by every
//! connection of the run, and error messages that say what to do.

use std::io;
use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls;
use tokio_rustls::rustls::CertificateError;

/// The client configuration: the web's roots, or (`--insecure`) any certificate. HTTP/1.1 is
/// the only protocol offered by ALPN.
pub(super) fn config(insecure: bool) -> Arc<rustls::ClientConfig> {
    static SECURE: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    static INSECURE: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let h1 = |insecure: bool| make(insecure, vec![b"http/1.1".to_vec()]);
    if insecure {
        INSECURE.get_or_init(|| h1(true)).clone()
    } else {
        SECURE.get_or_init(|| h1(false)).clone()
    }
}

/// A configuration offering HTTP/2 by ALPN: `h2` alone, or `h2` then `http/1.1`.
pub(super) fn config_h2(insecure: bool, fallback: bool) -> Arc<rustls::ClientConfig> {
    let mut alpn = vec![b"h2".to_vec()];
    if fallback {
        alpn.push(b"http/1.1".to_vec());
    }
    make(insecure, alpn)
}

fn make(insecure: bool, alpn: Vec<Vec<u8>>) -> Arc<rustls::ClientConfig> {
    {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the default provider supports the default protocol versions");
        let mut config = if insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth()
        } else {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.alpn_protocols = alpn;
        Arc::new(config)
    }
}

/// What to do about a TLS failure, appended to its message.
pub(super) fn hint(e: &io::Error) -> &'static str {
    let rustls_error = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => {
            " (the certificate names another host: use the host name it was issued for, or \
             --insecure to skip verification in a test environment)"
        }
        Some(rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)) => {
            " (the server speaks none of the protocols offered by ALPN: http_version = \"2\" \
             offers only h2; \"auto\" or \"1.1\" also offer HTTP/1.1)"
        }
        Some(rustls::Error::InvalidCertificate(_)) => {
            " (a self-signed or private-CA certificate? --insecure accepts any certificate, \
             for test environments only)"
        }
        _ => {
            let text = e.to_string();
            if text.contains("corrupt message") || text.contains("InvalidContentType") {
                " (is that port plain HTTP? then use http://)"
            } else {
                ""
            }
        }
    }
}

/// For `--insecure`: test environments with self-signed certificates.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
