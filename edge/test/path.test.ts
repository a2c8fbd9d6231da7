// The cases of crates/regpress-auth/src/scope.rs's tests, so the Worker and /check agree.
import { describe, expect, it } from "vitest";
import { parseRequest } from "../src/path.js";

const DIGEST = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

function repo(name: string, endpoint: string, reference: string, action = "pull") {
  return { kind: "repository", name, endpoint, reference, action };
}

describe("parseRequest", () => {
  it("names the repository, endpoint and action of registry paths", () => {
    expect(parseRequest("GET", "/v2/")).toEqual({ kind: "base" });
    expect(parseRequest("GET", "/v2")).toEqual({ kind: "base" });
    expect(parseRequest("GET", "/v2/_catalog")).toEqual({ kind: "catalog" });
    expect(parseRequest("GET", "/v2/acme/app/manifests/latest")).toEqual(repo("acme/app", "manifests", "latest"));
    expect(parseRequest("HEAD", `/v2/a/b/c/manifests/${DIGEST}`)).toEqual(repo("a/b/c", "manifests", DIGEST));
    expect(parseRequest("GET", `/v2/acme/app/blobs/${DIGEST}`)).toEqual(repo("acme/app", "blobs", DIGEST));
    expect(parseRequest("GET", `/v2/acme/app/referrers/${DIGEST}?artifactType=x`)).toEqual(
      repo("acme/app", "referrers", DIGEST),
    );
    expect(parseRequest("GET", "/v2/acme/app/tags/list?n=10&last=a%2Fb")).toEqual(repo("acme/app", "tags", "list"));
    expect(parseRequest("PUT", "/v2/acme/app/manifests/latest")).toEqual(repo("acme/app", "manifests", "latest", "push"));
    expect(parseRequest("POST", "/v2/acme/app/blobs/uploads/")).toMatchObject({ name: "acme/app", action: "push" });
    // A repository may be called `manifests`; the endpoint is the last two segments.
    expect(parseRequest("GET", "/v2/x/manifests/manifests/latest")).toEqual(repo("x/manifests", "manifests", "latest"));
  });

  it("refuses path tricks", () => {
    for (const bad of [
      "/v2/public/../private/app/manifests/latest",
      "/v2/public/%2e%2e/private/app/manifests/latest",
      "/v2/private%2Fapp/manifests/latest",
      "/v2/priv%61te/app/manifests/latest",
      "/v2//private/app/manifests/latest",
      "/v2/private//app/manifests/latest",
      "/v2/./private/app/manifests/latest",
      "/v2/private/app/manifests/../../other/manifests/latest",
      "/v2/private\\app/manifests/latest",
      "/v2/acme/app/blobs/latest",
      "/v2/acme/app/manifests/sha256:ABC",
      "/v2/acme/app/tags/other",
      "/v2/Acme/manifests/latest",
      "/other/acme/app/manifests/latest",
      "/v2/acme/app/manifests/",
      "/v2/_catalog/x",
      // regpress's own keys (the package index, yank records): never registry content.
      "/v2/_regpress/packages/shards/ab.json",
      "/v2/_regpress/packages/tags/acme/manifests/latest.json",
    ]) {
      expect(() => parseRequest("GET", bad), bad).toThrow();
    }
    expect(() => parseRequest("OPTIONS", "/v2/acme/app/manifests/latest")).toThrow();
    expect(() => parseRequest("", "/v2/acme/app/manifests/latest")).toThrow();
    expect(() => parseRequest("GET", "/v2/acme/app/blobs/uploads/x")).toThrow();
  });

  it("refuses encodings, separators and fragments rather than cut them short", () => {
    for (const [bad, why] of [
      ["/v2/public/base%252f..%252facme/app/manifests/latest", "percent"],
      ["/v2/acme%5Capp/manifests/latest", "percent"],
      ["/v2/public/%2E%2E/acme/app/manifests/latest", "percent"],
      ["/v2/acme%2Fapp/manifests/latest", "percent"],
      ["/v2/acme/app;x/manifests/latest", '";"'],
      ["/v2/acme/app/manifests/latest;a=b", '";"'],
      ["/v2/public/base;/../../acme/app/manifests/latest", '";"'],
      ["/v2/acme\\app/manifests/latest", '"\\\\"'],
      ["/v2/acme/app@x/manifests/latest", '"@"'],
      ["/v2/public/base/manifests/latest#/../../../../acme/app/manifests/latest", "fragment"],
      ["/v2/acme/app/manifests/latest?x=#", "fragment"],
      ["/v2/acme/app/manifests/latest?q=\u00e9", "outside visible ASCII"],
      ["/v2/acme/app/manifests/latest?q=a b", "outside visible ASCII"],
      ["/v2/acme/app/manifests/lat\test", "outside visible ASCII"],
      ["/v2acme/app/manifests/latest", "not under /v2/"],
    ] as const) {
      expect(() => parseRequest("GET", bad), bad).toThrow(why);
    }
    // The query is not the path: percent-encoding there is fine.
    expect(parseRequest("GET", "/v2/acme/app/tags/list?last=a%2Fb%5C")).toEqual(repo("acme/app", "tags", "list"));
  });
});
