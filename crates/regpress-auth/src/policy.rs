//! The trust policy: which identities may pull (or push) which repositories.
//!
//! Modelled on octo-sts trust policies: a rule names repository patterns, the actions it grants,
//! the issuer, the subject (exact or an anchored pattern), optionally an audience, and anchored
//! patterns on named claims. A rule applies only when every condition holds; a claim that is
//! missing (or not a string, number or boolean) fails it. Public repositories are pullable by
//! anyone. What a client gets is the intersection of what it asks and what this allows.

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;
use serde_json::Value;

use crate::config::TrustConfig;
use crate::oidc::Identity;
use crate::scope::{PULL, PUSH, Scope};

/// Compiled repository patterns (`acme/app`, `acme/*`, `acme/**`), for pull tokens.
#[derive(Debug)]
pub struct Patterns(Vec<GlobMatcher>);

impl Patterns {
    /// Compile `list`; the error names the bad pattern.
    pub fn new(list: &[String]) -> Result<Patterns, String> {
        list.iter()
            .map(|p| glob(p))
            .collect::<Result<_, _>>()
            .map(Patterns)
    }

    /// Does any pattern match `repository`?
    pub fn matches(&self, repository: &str) -> bool {
        self.0.iter().any(|g| g.is_match(repository))
    }
}

/// The compiled policy.
#[derive(Debug)]
pub struct Policy {
    public: Vec<GlobMatcher>,
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    repositories: Vec<GlobMatcher>,
    actions: Vec<String>,
    issuer: String,
    subject: Pattern,
    audience: Option<String>,
    claims: Vec<(String, Regex)>,
}

#[derive(Debug)]
enum Pattern {
    Exact(String),
    Anchored(Regex),
}

impl Pattern {
    fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Exact(s) => s == value,
            Pattern::Anchored(r) => r.is_match(value),
        }
    }
}

fn glob(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("repository pattern {pattern:?}: {e}"))
}

fn anchored(what: &str, pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("{what} {pattern:?}: {e}"))
}

impl Policy {
    /// Compile the public patterns and trust rules; errors name the rule and the pattern.
    pub fn new(public: &[String], trust: &[TrustConfig]) -> Result<Policy, String> {
        let public = public.iter().map(|p| glob(p)).collect::<Result<_, _>>()?;
        let rules = trust
            .iter()
            .enumerate()
            .map(|(i, r)| Rule::new(r).map_err(|e| format!("trust rule {}: {e}", i + 1)))
            .collect::<Result<_, _>>()?;
        Ok(Policy { public, rules })
    }

    /// Anyone may pull this repository.
    pub fn is_public(&self, repository: &str) -> bool {
        self.public.iter().any(|g| g.is_match(repository))
    }

    /// Some repository needs a token: `/v2/` then challenges anonymous clients.
    pub fn has_private(&self) -> bool {
        !self.rules.is_empty()
    }

    /// What `identity` (or an anonymous client) gets of what `scope` asks.
    pub fn grant(&self, identity: Option<&Identity>, scope: &Scope) -> Vec<String> {
        let repo = scope.repository.as_str();
        scope
            .actions
            .iter()
            .filter(|action| {
                (action.as_str() == PULL && self.is_public(repo))
                    || identity
                        .is_some_and(|id| self.rules.iter().any(|r| r.allows(id, repo, action)))
            })
            .cloned()
            .collect()
    }
}

impl Rule {
    fn new(c: &TrustConfig) -> Result<Rule, String> {
        if c.repositories.is_empty() {
            return Err("repositories must name at least one pattern".to_string());
        }
        for action in &c.actions {
            if action != PULL && action != PUSH {
                return Err(format!("action {action:?}: use pull or push"));
            }
        }
        let subject = match (&c.subject, &c.subject_pattern) {
            (Some(s), None) => Pattern::Exact(s.clone()),
            (None, Some(p)) => Pattern::Anchored(anchored("subject_pattern", p)?),
            _ => {
                return Err(
                    "give exactly one of subject and subject_pattern (an issuer alone would trust every one of its users)"
                        .to_string(),
                );
            }
        };
        Ok(Rule {
            repositories: c
                .repositories
                .iter()
                .map(|p| glob(p))
                .collect::<Result<_, _>>()?,
            actions: c.actions.clone(),
            issuer: c.issuer.clone(),
            subject,
            audience: c.audience.clone(),
            claims: c
                .claim_pattern
                .iter()
                .map(|(k, p)| Ok((k.clone(), anchored(&format!("claim_pattern.{k}"), p)?)))
                .collect::<Result<_, String>>()?,
        })
    }

    fn allows(&self, id: &Identity, repository: &str, action: &str) -> bool {
        self.actions.iter().any(|a| a == action)
            && self.repositories.iter().any(|g| g.is_match(repository))
            && id.issuer == self.issuer
            && self.subject.matches(&id.subject)
            && self
                .audience
                .as_ref()
                .is_none_or(|aud| id.audience.iter().any(|a| a == aud))
            && self.claims.iter().all(|(name, pattern)| {
                claim_text(id.claims.get(name)).is_some_and(|v| pattern.is_match(&v))
            })
    }
}

/// A claim as text for matching: strings as they are, numbers and booleans printed; anything
/// else (missing, null, arrays, objects) matches nothing.
fn claim_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    const GH: &str = "https://token.actions.githubusercontent.com";

    fn rule(subject: &str, claims: &[(&str, &str)]) -> TrustConfig {
        TrustConfig {
            repositories: vec!["acme/*".to_string()],
            actions: vec!["pull".to_string()],
            issuer: GH.to_string(),
            subject: None,
            subject_pattern: Some(subject.to_string()),
            audience: Some("cr.example.com".to_string()),
            claim_pattern: claims
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn github(repository: &str, git_ref: &str) -> Identity {
        let claims = json!({
            "sub": format!("repo:{repository}:ref:{git_ref}"),
            "repository": repository,
            "ref": git_ref,
            "run_attempt": 1,
        });
        Identity {
            issuer: GH.to_string(),
            subject: claims["sub"].as_str().unwrap().to_string(),
            audience: vec!["cr.example.com".to_string()],
            claims: claims.as_object().unwrap().clone(),
        }
    }

    fn pull(repo: &str) -> Scope {
        Scope::parse(&format!("repository:{repo}:pull,push")).unwrap()
    }

    #[test]
    fn a_rule_grants_only_what_all_its_conditions_allow() {
        let policy = Policy::new(
            &["public/**".to_string()],
            &[rule(
                "repo:acme/app:ref:refs/heads/.*",
                &[("repository", "acme/app"), ("run_attempt", "[0-9]+")],
            )],
        )
        .unwrap();
        let main = github("acme/app", "refs/heads/main");
        assert_eq!(policy.grant(Some(&main), &pull("acme/app")), vec!["pull"]);
        assert_eq!(
            policy.grant(Some(&main), &pull("acme/a/b")),
            Vec::<String>::new()
        );
        assert_eq!(
            policy.grant(Some(&main), &pull("other/app")),
            Vec::<String>::new()
        );
        // Anchored: a longer repository claim does not match `acme/app`.
        let evil = github("acme/app-evil", "refs/heads/main");
        assert!(policy.grant(Some(&evil), &pull("acme/app")).is_empty());
        let tag = github("acme/app", "refs/tags/v1");
        assert!(policy.grant(Some(&tag), &pull("acme/app")).is_empty());
        let mut other_aud = main.clone();
        other_aud.audience = vec!["other".to_string()];
        assert!(policy.grant(Some(&other_aud), &pull("acme/app")).is_empty());
        let mut other_issuer = main.clone();
        other_issuer.issuer = "https://gitlab.com".to_string();
        assert!(
            policy
                .grant(Some(&other_issuer), &pull("acme/app"))
                .is_empty()
        );
        let mut missing = main.clone();
        missing.claims.remove("run_attempt");
        assert!(policy.grant(Some(&missing), &pull("acme/app")).is_empty());
        // Public repositories: pull for anyone, never push.
        assert_eq!(policy.grant(None, &pull("public/x/y")), vec!["pull"]);
        assert!(policy.grant(None, &pull("acme/app")).is_empty());
        assert!(policy.has_private());
    }

    #[test]
    fn bad_rules_are_refused() {
        let mut no_subject = rule("x", &[]);
        no_subject.subject_pattern = None;
        let mut both = rule("x", &[]);
        both.subject = Some("x".to_string());
        let mut delete = rule("x", &[]);
        delete.actions = vec!["delete".to_string()];
        let bad_regex = rule("(", &[]);
        for (r, want) in [
            (no_subject, "exactly one of subject"),
            (both, "exactly one of subject"),
            (delete, "use pull or push"),
            (bad_regex, "subject_pattern"),
        ] {
            let err = Policy::new(&[], &[r]).unwrap_err();
            assert!(
                err.starts_with("trust rule 1: ") && err.contains(want),
                "{err}"
            );
        }
        assert!(Policy::new(&["a/[".to_string()], &[]).is_err());
    }
}
