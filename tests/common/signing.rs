//! A Sigstore instance made offline for tests: a Fulcio-style CA (rcgen), a Rekor-style log key,
//! the custom `trusted_root.json` naming both, and signatures made with them in the forms
//! cosign writes: v0.3 bundles (DSSE in-toto statements) as OCI referrers, legacy
//! `sha256-<hex>.sig` simple-signing images with Rekor bundle annotations, and legacy
//! `sha256-<hex>.att` DSSE attestation images (Rekor intoto 0.0.2 entries). Keyless
//! certificates may carry Fulcio's CI extensions (source repository, ref, commit), as GitHub
//! Actions' do.
//!
//! Log entries are real Rekor v1 entries (hashedrekord / dsse 0.0.1 bodies, signed entry
//! timestamps, a one-leaf inclusion proof and a signed checkpoint), so `sigstore-verify` checks
//! them completely; only the log itself is not a server.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256, SanType, SigningKey as _,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256, Sha384};

use super::synth::{self, Generated, write_blob};

pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const COSIGN_SIGN: &str = "https://sigstore.dev/cosign/sign/v1";
pub const ISSUER: &str = "https://token.actions.githubusercontent.com";
pub const IDENTITY: &str =
    "https://github.com/acme/images/.github/workflows/release.yml@refs/heads/main";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// The key types a trust policy accepts (issue 4: ECDSA P-256/P-384, Ed25519, RSA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// cosign's default (`cosign generate-key-pair`).
    P256,
    /// ECDSA P-384, signing with SHA-384 (its Sigstore scheme).
    P384,
    /// Pure Ed25519: verifiable only over the signed bytes, never from a digest.
    Ed25519,
    /// RSA 2048, PKCS#1 v1.5 with SHA-256.
    Rsa,
}

impl KeyType {
    pub const ALL: [KeyType; 4] = [KeyType::P256, KeyType::P384, KeyType::Ed25519, KeyType::Rsa];
}

/// A key pair: P-256 from sigstore-crypto (its built-in provider generates only P-256), the
/// others from rcgen (aws-lc-rs), which signs with each key's own scheme.
enum Key {
    Sigstore(sigstore_crypto::KeyPair),
    Rcgen(KeyPair),
}

/// One signing key, with its certificate when keyless.
pub struct Signer {
    key: Key,
    /// Its type.
    pub key_type: KeyType,
    public_pem: String,
    /// The leaf certificate (DER) for keyless signers.
    pub certificate: Option<Vec<u8>>,
}

impl Signer {
    /// A cosign-style key pair (`cosign generate-key-pair`: ECDSA P-256).
    pub fn key() -> Signer {
        Signer::of(KeyType::P256)
    }

    /// A key pair of `key_type`.
    pub fn of(key_type: KeyType) -> Signer {
        let rcgen = |alg| {
            let key = KeyPair::generate_for(alg).expect("key");
            let public_pem = key.public_key_pem();
            (Key::Rcgen(key), public_pem)
        };
        let (key, public_pem) = match key_type {
            KeyType::P256 => {
                let key = sigstore_crypto::KeyPair::generate_ecdsa_p256().expect("key");
                let public_pem = key.public_key_der().expect("public key").to_pem();
                (Key::Sigstore(key), public_pem)
            }
            KeyType::P384 => rcgen(&PKCS_ECDSA_P384_SHA384),
            KeyType::Ed25519 => rcgen(&PKCS_ED25519),
            KeyType::Rsa => rcgen(&PKCS_RSA_SHA256),
        };
        Signer {
            key,
            key_type,
            public_pem,
            certificate: None,
        }
    }

    /// The public key as PEM (cosign.pub).
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// Write the public key to `path`.
    pub fn write_public(&self, path: &Path) {
        std::fs::write(path, &self.public_pem).expect("write key");
    }

    /// What the log records as the verifier: the certificate or the key, as PEM.
    fn verifier_pem(&self) -> String {
        match &self.certificate {
            Some(der) => pem::encode(&pem::Pem::new("CERTIFICATE", der.clone())),
            None => self.public_pem.clone(),
        }
    }

    fn sign(&self, bytes: &[u8]) -> Vec<u8> {
        match &self.key {
            Key::Sigstore(key) => key.sign(bytes).expect("sign").as_bytes().to_vec(),
            Key::Rcgen(key) => key.sign(bytes).expect("sign"),
        }
    }

    /// The message digest a Sigstore client declares in a message-signature bundle made with
    /// this key: its scheme's hash (SHA-384 for P-384), SHA-256 otherwise (pure Ed25519 hashes
    /// nothing; the digest only names the artifact).
    fn message_digest(&self, artifact: &[u8]) -> Value {
        match self.key_type {
            KeyType::P384 => {
                json!({"algorithm": "SHA2_384", "digest": B64.encode(Sha384::digest(artifact).as_slice())})
            }
            _ => json!({"algorithm": "SHA2_256", "digest": B64.encode(sha256(artifact))}),
        }
    }
}

/// The test instance: CA, log, trusted root.
pub struct TestSigstore {
    ca: CertifiedIssuer<'static, KeyPair>,
    log: sigstore_crypto::KeyPair,
    log_pkcs8: Vec<u8>,
    log_id: Vec<u8>,
    log_spki: Vec<u8>,
}

/// Certificate validity in days relative to today.
#[derive(Clone, Copy)]
pub struct Validity {
    pub from_days: i64,
    pub to_days: i64,
}

impl Validity {
    pub const CURRENT: Validity = Validity {
        from_days: -1,
        to_days: 1,
    };
    pub const EXPIRED: Validity = Validity {
        from_days: -30,
        to_days: -29,
    };
}

/// Year, month and day, `days` from today.
fn ymd(days: i64) -> (i32, u8, u8) {
    let day = jiff::Zoned::now()
        .date()
        .checked_add(jiff::Span::new().days(days))
        .expect("date");
    (day.year() as i32, day.month() as u8, day.day() as u8)
}

impl TestSigstore {
    pub fn new() -> TestSigstore {
        let log = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("log key");
        TestSigstore::with_log(log.serialize_der())
    }

    /// Another CA (not in this instance's trusted root) logging to the same log.
    pub fn other_ca(&self) -> TestSigstore {
        TestSigstore::with_log(self.log_pkcs8.clone())
    }

    fn with_log(log_pkcs8: Vec<u8>) -> TestSigstore {
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("ca key");
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "regpress test fulcio");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ((y0, m0, d0), (y1, m1, d1)) = (ymd(-3650), ymd(3650));
        params.not_before = rcgen::date_time_ymd(y0, m0, d0);
        params.not_after = rcgen::date_time_ymd(y1, m1, d1);
        let ca = CertifiedIssuer::self_signed(params, ca_key).expect("ca");
        let log = sigstore_crypto::KeyPair::from_pkcs8_der(&log_pkcs8).expect("log key");
        let log_spki = log.public_key_der().expect("log spki").as_bytes().to_vec();
        TestSigstore {
            ca,
            log_id: sha256(&log_spki),
            log,
            log_pkcs8,
            log_spki,
        }
    }

    /// The custom trusted root: this CA and this log (no CT logs, no TSAs).
    pub fn trusted_root(&self) -> Value {
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{
                "baseUrl": "https://rekor.regpress.test",
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": B64.encode(&self.log_spki),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": "2000-01-01T00:00:00Z"}
                },
                "logId": {"keyId": B64.encode(&self.log_id)}
            }],
            "certificateAuthorities": [{
                "subject": {"organization": "regpress", "commonName": "regpress test fulcio"},
                "uri": "https://fulcio.regpress.test",
                "certChain": {"certificates": [{"rawBytes": B64.encode(self.ca.der())}]},
                "validFor": {"start": "2000-01-01T00:00:00Z"}
            }],
            "ctlogs": [],
            "timestampAuthorities": []
        })
    }

    pub fn write_trusted_root(&self, path: &Path) {
        std::fs::write(path, self.trusted_root().to_string()).expect("write trusted root");
    }

    /// A keyless signer: a Fulcio-style certificate for `identity` from `issuer`.
    pub fn keyless(&self, identity: &str, issuer: &str, validity: Validity) -> Signer {
        self.keyless_with(identity, issuer, validity, &[])
    }

    /// A keyless signer whose certificate also carries Fulcio CI extensions: `(n, value)` is
    /// OID 1.3.6.1.4.1.57264.1.n as a DER UTF8String (12: source repository URI, 13: its
    /// commit, 14: its ref).
    pub fn keyless_with(
        &self,
        identity: &str,
        issuer: &str,
        validity: Validity,
        claims: &[(u64, &str)],
    ) -> Signer {
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("leaf key");
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![if identity.contains("://") {
            SanType::URI(identity.try_into().expect("uri"))
        } else {
            SanType::Rfc822Name(identity.try_into().expect("email"))
        }];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let ((y0, m0, d0), (y1, m1, d1)) = (ymd(validity.from_days), ymd(validity.to_days));
        params.not_before = rcgen::date_time_ymd(y0, m0, d0);
        params.not_after = rcgen::date_time_ymd(y1, m1, d1);
        // Fulcio's issuer extensions: 1.1 raw (legacy), 1.8 as a DER UTF8String.
        let mut utf8 = vec![0x0c, issuer.len() as u8];
        utf8.extend_from_slice(issuer.as_bytes());
        params.custom_extensions = vec![
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 1], issuer.into()),
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 8], utf8),
        ];
        for (n, value) in claims {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 57264, 1, *n],
                    der_utf8(value),
                ));
        }
        let cert = params.signed_by(&leaf_key, &*self.ca).expect("leaf");
        let key =
            sigstore_crypto::KeyPair::from_pkcs8_der(&leaf_key.serialize_der()).expect("leaf key");
        let public_pem = key.public_key_der().expect("public").to_pem();
        Signer {
            key: Key::Sigstore(key),
            key_type: KeyType::P256,
            public_pem,
            certificate: Some(cert.der().to_vec()),
        }
    }

    /// A Rekor v1 entry for `body`, integrated now: signed entry timestamp, one-leaf inclusion
    /// proof and signed checkpoint.
    fn log_entry(&self, body: &Value) -> Value {
        let body_bytes = body.to_string().into_bytes();
        let body_b64 = B64.encode(&body_bytes);
        let integrated = jiff::Timestamp::now().as_second();
        let set_payload = json!({
            "body": body_b64,
            "integratedTime": integrated,
            "logID": hex::encode(&self.log_id),
            "logIndex": 0,
        });
        let set = self
            .log
            .sign(set_payload.to_string().as_bytes())
            .expect("set");
        let mut leaf = vec![0u8];
        leaf.extend_from_slice(&body_bytes);
        let root = sha256(&leaf);
        let origin = "rekor.regpress.test - 1";
        let note = format!("{origin}\n1\n{}\n", B64.encode(&root));
        let mut sig = self.log_id[..4].to_vec();
        sig.extend_from_slice(
            self.log
                .sign(note.as_bytes())
                .expect("checkpoint")
                .as_bytes(),
        );
        let checkpoint = format!(
            "{note}\n\u{2014} rekor.regpress.test {}\n",
            B64.encode(&sig)
        );
        json!({
            "logIndex": "0",
            "logId": {"keyId": B64.encode(&self.log_id)},
            "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
            "integratedTime": integrated.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": B64.encode(set.as_bytes())},
            "inclusionProof": {
                "logIndex": "0",
                "rootHash": B64.encode(&root),
                "treeSize": "1",
                "hashes": [],
                "checkpoint": {"envelope": checkpoint}
            },
            "canonicalizedBody": body_b64,
        })
    }

    fn material(&self, signer: &Signer, entry: Value) -> Value {
        match &signer.certificate {
            Some(der) => {
                json!({"certificate": {"rawBytes": B64.encode(der)}, "tlogEntries": [entry]})
            }
            None => json!({"publicKey": {"hint": ""}, "tlogEntries": [entry]}),
        }
    }

    /// A cosign v3 signature bundle: a DSSE in-toto statement over `subject` (`sha256:<hex>`).
    pub fn dsse_bundle(&self, signer: &Signer, subject: &str, predicate_type: &str) -> Value {
        self.attestation(signer, subject, predicate_type, json!({}))
    }

    /// An in-toto attestation bundle (`cosign attest`): `predicate` about `subject`.
    pub fn attestation(
        &self,
        signer: &Signer,
        subject: &str,
        predicate_type: &str,
        predicate: Value,
    ) -> Value {
        self.statement_bundle(signer, &statement(&[subject], predicate_type, predicate))
    }

    /// A DSSE envelope over `statement`, signed by `signer`: the envelope and its signature.
    fn envelope(&self, signer: &Signer, statement: &Value) -> (Value, Vec<u8>, Vec<u8>) {
        let payload = statement.to_string().into_bytes();
        let payload_type = "application/vnd.in-toto+json";
        let pae = format!(
            "DSSEv1 {} {} {} ",
            payload_type.len(),
            payload_type,
            payload.len()
        );
        let mut signed = pae.into_bytes();
        signed.extend_from_slice(&payload);
        let signature = signer.sign(&signed);
        let envelope = json!({
            "payload": B64.encode(&payload),
            "payloadType": payload_type,
            "signatures": [{"sig": B64.encode(&signature), "keyid": ""}],
        });
        (envelope, payload, signature)
    }

    /// A legacy cosign attestation (`cosign attest` before v3) of `statement`: the DSSE
    /// envelope layer and the annotations cosign writes on it (certificate, Rekor bundle of an
    /// intoto 0.0.2 entry, predicate type).
    pub fn legacy_attestation(
        &self,
        signer: &Signer,
        statement: &Value,
    ) -> (Vec<u8>, BTreeMap<String, String>) {
        let (envelope, payload, signature) = self.envelope(signer, statement);
        let body = json!({
            "apiVersion": "0.0.2",
            "kind": "intoto",
            "spec": {"content": {
                "envelope": {
                    "payloadType": envelope["payloadType"],
                    "signatures": [{
                        "sig": B64.encode(B64.encode(&signature)),
                        "publicKey": B64.encode(signer.verifier_pem()),
                    }],
                },
                "hash": {"algorithm": "sha256", "value": hex::encode(sha256(envelope.to_string().as_bytes()))},
                "payloadHash": {"algorithm": "sha256", "value": hex::encode(sha256(&payload))},
            }}
        });
        let mut annotations = self.rekor_annotations(signer, &body);
        annotations.insert(
            "dev.cosignproject.cosign/signature".to_string(),
            String::new(),
        );
        annotations.insert(
            "predicateType".to_string(),
            statement["predicateType"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        (envelope.to_string().into_bytes(), annotations)
    }

    /// The annotations cosign writes for a Rekor entry of `body` (and the certificate, when
    /// keyless).
    fn rekor_annotations(&self, signer: &Signer, body: &Value) -> BTreeMap<String, String> {
        let entry = self.log_entry(body);
        let rekor = json!({
            "SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
            "Payload": {
                "body": entry["canonicalizedBody"],
                "integratedTime": entry["integratedTime"].as_str().unwrap().parse::<i64>().unwrap(),
                "logIndex": 0,
                "logID": hex::encode(&self.log_id),
            }
        });
        let mut annotations = BTreeMap::new();
        annotations.insert("dev.sigstore.cosign/bundle".to_string(), rekor.to_string());
        if let Some(der) = &signer.certificate {
            annotations.insert(
                "dev.sigstore.cosign/certificate".to_string(),
                pem::encode(&pem::Pem::new("CERTIFICATE", der.clone())),
            );
        }
        annotations
    }

    /// A v0.3 bundle of `statement` (any subjects) in a DSSE envelope signed by `signer`.
    pub fn statement_bundle(&self, signer: &Signer, statement: &Value) -> Value {
        let (envelope, payload, signature) = self.envelope(signer, statement);
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": hex::encode(sha256(envelope.to_string().as_bytes()))},
                "payloadHash": {"algorithm": "sha256", "value": hex::encode(sha256(&payload))},
                "signatures": [{"signature": B64.encode(&signature), "verifier": B64.encode(signer.verifier_pem())}],
            }
        });
        json!({
            "mediaType": BUNDLE_V03,
            "verificationMaterial": self.material(signer, self.log_entry(&body)),
            "dsseEnvelope": envelope,
        })
    }

    /// A `cosign sign-blob --bundle` style bundle: a message signature over `artifact`.
    pub fn blob_bundle(&self, signer: &Signer, artifact: &[u8]) -> Value {
        let signature = signer.sign(artifact);
        let body = hashedrekord(signer, &sha256(artifact), &signature);
        json!({
            "mediaType": BUNDLE_V03,
            "verificationMaterial": self.material(signer, self.log_entry(&body)),
            "messageSignature": {
                "messageDigest": signer.message_digest(artifact),
                "signature": B64.encode(&signature),
            },
        })
    }

    /// A legacy cosign signature of `subject`: the simple-signing payload and the layer
    /// annotations cosign writes (signature, certificate, Rekor bundle).
    pub fn legacy_signature(
        &self,
        signer: &Signer,
        subject: &str,
    ) -> (Vec<u8>, BTreeMap<String, String>) {
        let payload = json!({
            "critical": {
                "identity": {"docker-reference": "registry.regpress.test/app"},
                "image": {"docker-manifest-digest": subject},
                "type": "cosign container image signature",
            },
            "optional": null,
        })
        .to_string()
        .into_bytes();
        let signature = signer.sign(&payload);
        let body = hashedrekord(signer, &sha256(&payload), &signature);
        let mut annotations = self.rekor_annotations(signer, &body);
        annotations.insert(
            "dev.cosignproject.cosign/signature".to_string(),
            B64.encode(&signature),
        );
        (payload, annotations)
    }
}

/// An in-toto v1 statement of `predicate` about `subjects` (`sha256:<hex>` each).
pub fn statement(subjects: &[&str], predicate_type: &str, predicate: Value) -> Value {
    let subjects: Vec<Value> = subjects
        .iter()
        .map(|s| json!({"name": "", "digest": {"sha256": s.trim_start_matches("sha256:")}}))
        .collect();
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects,
        "predicateType": predicate_type,
        "predicate": predicate,
    })
}

/// A DER UTF8String (Fulcio's encoding of its CI extensions).
fn der_utf8(value: &str) -> Vec<u8> {
    let len = value.len();
    let mut out = vec![0x0c];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value.as_bytes());
    out
}

/// Attach a legacy cosign attestation image (one DSSE envelope layer) to the layout in `dir`,
/// as `cosign attest` before v3 wrote it. Returns the `.att` manifest's digest.
pub fn attach_legacy_attestation(
    dir: &Path,
    envelope: &[u8],
    annotations: &BTreeMap<String, String>,
) -> String {
    legacy_image(
        dir,
        "application/vnd.dsse.envelope.v1+json",
        envelope,
        annotations,
    )
}

/// A legacy cosign image (`.sig`, `.att`): cosign's empty image config and one `media_type`
/// layer of `bytes` with `annotations`. Returns the manifest's digest.
fn legacy_image(
    dir: &Path,
    media_type: &str,
    bytes: &[u8],
    annotations: &BTreeMap<String, String>,
) -> String {
    let layer = write_blob(dir, bytes);
    let config = br#"{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#;
    let config_digest = write_blob(dir, config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": media_type, "digest": layer, "size": bytes.len(), "annotations": annotations}],
    });
    write_blob(dir, manifest.to_string().as_bytes())
}

fn hashedrekord(signer: &Signer, digest: &[u8], signature: &[u8]) -> Value {
    json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex::encode(digest)}},
            "signature": {
                "content": B64.encode(signature),
                "publicKey": {"content": B64.encode(signer.verifier_pem())},
            },
        }
    })
}

/// Attach `bundle` to the manifest `subject` of the layout in `dir` as cosign v3 does: an OCI
/// artifact manifest (artifactType = the bundle's media type) present only as a blob.
/// Returns the referrer manifest's digest.
pub fn attach_bundle(
    dir: &Path,
    subject: &str,
    subject_type: &str,
    subject_size: usize,
    bundle: &Value,
) -> String {
    let annotations = if bundle.get("dsseEnvelope").is_some() {
        json!({"dev.sigstore.bundle.content": "dsse-envelope", "dev.sigstore.bundle.predicateType": COSIGN_SIGN})
    } else {
        json!({"dev.sigstore.bundle.content": "message-signature"})
    };
    let subject = json!({"mediaType": subject_type, "digest": subject, "size": subject_size});
    let artifact = Artifact {
        media_type: BUNDLE_V03,
        bytes: bundle.to_string().into_bytes(),
        annotations,
    };
    attach_artifact(dir, &subject, &artifact)
}

/// What an OCI artifact manifest carries: one layer of `media_type` (also its artifactType).
pub struct Artifact {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
    pub annotations: Value,
}

/// Attach `artifact` to the manifest described by `subject` (an OCI descriptor) of the layout
/// in `dir`, as cosign v3 and ORAS do: an artifact manifest with the empty config, present only
/// as a blob. Returns the artifact manifest's digest.
pub fn attach_artifact(dir: &Path, subject: &Value, artifact: &Artifact) -> String {
    let layer = write_blob(dir, &artifact.bytes);
    let empty = write_blob(dir, b"{}");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact.media_type,
        "config": {"mediaType": EMPTY, "digest": empty, "size": 2},
        "layers": [{"mediaType": artifact.media_type, "digest": layer, "size": artifact.bytes.len()}],
        "subject": subject,
        "annotations": artifact.annotations,
    });
    write_blob(dir, manifest.to_string().as_bytes())
}

/// Attach a legacy cosign signature image (one simple-signing layer) to the layout in `dir`.
/// Returns the `.sig` manifest's digest.
pub fn attach_legacy(dir: &Path, payload: &[u8], annotations: &BTreeMap<String, String>) -> String {
    legacy_image(dir, SIMPLE_SIGNING, payload, annotations)
}

/// Attach `bundle` as a cosign v3 referrer of the index of `g`; returns the referrer's digest.
pub fn attach_to_index(g: &Generated, bundle: &Value) -> String {
    let index = "application/vnd.oci.image.index.v1+json";
    attach_bundle(&g.dir, &g.index_digest, index, g.index_bytes.len(), bundle)
}

/// Attach `bundle` as a referrer of the platform manifest `digest` of `g`.
pub fn attach_to_manifest(g: &Generated, digest: &str, bundle: &Value) -> String {
    let size = std::fs::metadata(synth::blob_path(&g.dir, digest))
        .expect("the platform manifest's blob")
        .len();
    let manifest = "application/vnd.oci.image.manifest.v1+json";
    attach_bundle(&g.dir, digest, manifest, size as usize, bundle)
}

/// A scratch directory with the test Sigstore and its trusted root written in it: what every
/// signed-publish test starts from.
pub struct World {
    pub tmp: tempfile::TempDir,
    pub sigstore: TestSigstore,
    /// `trusted_root.json` of `sigstore`.
    pub root: std::path::PathBuf,
}

impl World {
    pub fn new() -> World {
        let tmp = tempfile::tempdir().expect("tempdir");
        let sigstore = TestSigstore::new();
        let root = tmp.path().join("trusted_root.json");
        sigstore.write_trusted_root(&root);
        World {
            tmp,
            sigstore,
            root,
        }
    }

    /// `name` in the scratch directory.
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.tmp.path().join(name)
    }
}
