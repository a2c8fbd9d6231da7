//! regpress-oci: the OCI vocabulary every part of regpress shares: content digests
//! ([`digest`]) and the distribution spec's repository and tag grammar ([`names`]).
//!
//! It is a crate of its own so that the publisher and the auth handler (`regpress-auth`) agree
//! on what a digest, a repository name and a tag are without the handler depending on the
//! publisher: the handler needs these three checks and nothing else of it. Keep it small: a
//! dependency added here is one every regpress crate builds.

pub mod digest;
pub mod names;
