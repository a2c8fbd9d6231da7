//! What a reader may rely on at every instant, checked from the store's side: every tag key
//! resolves to a manifest or index whose children and blobs all exist with the right digests
//! and sizes; every tag a tag list names exists; every repository the catalog names has a tag
//! list. Used after each SIGKILL and each injected fault.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::synth::digest_of;

/// Every broken promise in a bucket given its keys (with sizes) and a way to read one.
pub fn problems(
    keys: &BTreeMap<String, u64>,
    get: impl Fn(&str) -> Option<Vec<u8>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut checked: BTreeSet<String> = BTreeSet::new();
    for key in keys.keys() {
        let Some((repo, reference)) = key
            .strip_prefix("v2/")
            .and_then(|k| k.rsplit_once("/manifests/"))
        else {
            continue;
        };
        if reference.starts_with("sha256:") {
            continue;
        }
        let Some(bytes) = get(key) else {
            problems.push(format!("{key}: listed but unreadable"));
            continue;
        };
        walk(
            repo,
            key,
            &bytes,
            None,
            keys,
            &get,
            &mut checked,
            &mut problems,
        );
    }
    for key in keys.keys().filter(|k| k.ends_with("/tags/list")) {
        let repo = &key["v2/".len()..key.len() - "/tags/list".len()];
        let Some(list) = get(key).and_then(|b| serde_json::from_slice::<Value>(&b).ok()) else {
            problems.push(format!("{key}: not a JSON tag list"));
            continue;
        };
        if list["name"] != repo {
            problems.push(format!("{key}: name {} is not {repo}", list["name"]));
        }
        for tag in list["tags"].as_array().into_iter().flatten() {
            let tag_key = format!("v2/{repo}/manifests/{}", tag.as_str().unwrap_or_default());
            if !keys.contains_key(&tag_key) {
                problems.push(format!("{key} lists {tag}, but {tag_key} is missing"));
            }
        }
    }
    if let Some(catalog) = get("v2/_catalog").and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    {
        for repo in catalog["repositories"].as_array().into_iter().flatten() {
            let list = format!("v2/{}/tags/list", repo.as_str().unwrap_or_default());
            if !keys.contains_key(&list) {
                problems.push(format!("v2/_catalog names {repo}, but {list} is missing"));
            }
        }
    }
    problems
}

#[allow(clippy::too_many_arguments)]
fn walk(
    repo: &str,
    key: &str,
    bytes: &[u8],
    wanted: Option<&str>,
    keys: &BTreeMap<String, u64>,
    get: &impl Fn(&str) -> Option<Vec<u8>>,
    checked: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    let digest = digest_of(bytes);
    if let Some(w) = wanted
        && w != digest
    {
        problems.push(format!("{key}: hashes to {digest}, not {w}"));
    }
    let by_digest = format!("v2/{repo}/manifests/{digest}");
    if !keys.contains_key(&by_digest) {
        problems.push(format!("{key}: {by_digest} is missing"));
    }
    let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
        problems.push(format!("{key}: not JSON"));
        return;
    };
    for child in doc["manifests"].as_array().into_iter().flatten() {
        let d = child["digest"].as_str().unwrap_or_default();
        let child_key = format!("v2/{repo}/manifests/{d}");
        if !checked.insert(child_key.clone()) {
            continue;
        }
        match get(&child_key) {
            Some(b) => walk(repo, &child_key, &b, Some(d), keys, get, checked, problems),
            None => problems.push(format!("{key}: child {child_key} is missing")),
        }
    }
    let blobs = doc["config"]
        .as_object()
        .map(|_| &doc["config"])
        .into_iter()
        .chain(doc["layers"].as_array().into_iter().flatten());
    for blob in blobs {
        let d = blob["digest"].as_str().unwrap_or_default();
        let blob_key = format!("v2/{repo}/blobs/{d}");
        if !checked.insert(blob_key.clone()) {
            continue;
        }
        match keys.get(&blob_key) {
            None => problems.push(format!("{key}: blob {blob_key} is missing")),
            Some(size) if Some(*size) != blob["size"].as_u64() => problems.push(format!(
                "{blob_key}: {size} bytes, descriptor says {}",
                blob["size"]
            )),
            Some(_) => match get(&blob_key) {
                Some(b) if digest_of(&b) == d => {}
                _ => problems.push(format!("{blob_key}: content does not hash to its digest")),
            },
        }
    }
}
