/**
 * What a request path reaches, parsed as strictly as `regpress auth`'s `/check` parses the
 * original URI (crates/regpress-auth/src/scope.rs): the same grammar, the same refusals. A path
 * that a store could read as another repository than the one checked (`..`, percent-encoding,
 * `//`, `;`, `\`, a `#` fragment, bytes outside visible ASCII) is refused, never normalised.
 *
 * In the Worker the key read is the path checked, so no second reading can differ; the
 * runtime's URL parser has already resolved dot segments and backslashes by the time the
 * Worker runs. The refusals stay, so the Worker and `/check` agree on every path they see.
 */

/** Longest repository name (the distribution spec's practical limit). */
const MAX_REPOSITORY_LEN = 255;
const REPOSITORY =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** Characters of repository names, tags, digests and the `/` between them. */
const PATH_CHARS = /^[a-zA-Z0-9._\-:+=/]*$/;

/** The endpoints under a repository. */
export type Endpoint = "manifests" | "blobs" | "referrers" | "tags";

/** What a request reaches. */
export type Target =
  | { kind: "base" }
  | { kind: "catalog" }
  | {
      kind: "repository";
      /** The repository name. */
      name: string;
      endpoint: Endpoint;
      /** The tag or digest; `list` for tag lists. */
      reference: string;
      action: "pull" | "push";
    };

/** A refusal, with why. */
export class Refused extends Error {}

/** Whether `s` is a digest as the image spec writes it (sha256 only, as regpress). */
export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}

/** Check a repository name against the distribution grammar. */
export function checkRepository(name: string): string | undefined {
  if (name.length > MAX_REPOSITORY_LEN) {
    return `repository name ${JSON.stringify(name)} is longer than ${MAX_REPOSITORY_LEN} characters`;
  }
  if (!REPOSITORY.test(name)) {
    return `invalid repository name ${JSON.stringify(name)}`;
  }
  return undefined;
}

/**
 * Parse a method and a URI (path and query, as sent) into what it reaches; throws
 * {@link Refused} saying why a request is refused. The query is not read.
 */
export function parseRequest(method: string, uri: string): Target {
  for (let i = 0; i < uri.length; i++) {
    const code = uri.charCodeAt(i);
    if (code < 0x21 || code > 0x7e) {
      throw new Refused(`byte 0x${code.toString(16).padStart(2, "0")} outside visible ASCII in the URI`);
    }
  }
  if (uri.includes("#")) {
    throw new Refused("fragment (#) in the URI");
  }
  const path = uri.split("?")[0] ?? "";
  if (path.includes("%")) {
    throw new Refused("percent-encoding in a registry path");
  }
  if (!PATH_CHARS.test(path)) {
    const c = [...path].find((ch) => !PATH_CHARS.test(ch)) ?? "";
    throw new Refused(`character ${JSON.stringify(c)} is in no registry path`);
  }
  if (path.includes("//")) {
    throw new Refused("empty path segment");
  }
  let action: "pull" | "push";
  switch (method) {
    case "GET":
    case "HEAD":
      action = "pull";
      break;
    case "PUT":
    case "POST":
    case "PATCH":
    case "DELETE":
      action = "push";
      break;
    default:
      throw new Refused(`method ${method} is not a registry method`);
  }
  if (!path.startsWith("/v2")) {
    throw new Refused("not under /v2/");
  }
  let rest = path.slice(3);
  if (rest === "" || rest === "/") {
    return { kind: "base" };
  }
  if (!rest.startsWith("/")) {
    throw new Refused("not under /v2/");
  }
  rest = rest.slice(1);
  const segments = rest.split("/");
  if (segments.some((s) => s === "." || s === "..")) {
    throw new Refused("dot segment in path");
  }
  if (rest === "_catalog") {
    return { kind: "catalog" };
  }
  const n = segments.length;
  const last = segments[n - 1] ?? "";
  const second = segments[n - 2] ?? "";
  let nameEnd: number;
  let endpoint: Endpoint;
  let ok: boolean;
  if (n >= 4 && segments[n - 3] === "blobs" && second === "uploads") {
    nameEnd = n - 3;
    endpoint = "blobs";
    ok = action === "push";
  } else if (n >= 3 && second === "manifests") {
    nameEnd = n - 2;
    endpoint = "manifests";
    ok = TAG.test(last) || isDigest(last);
  } else if (n >= 3 && (second === "blobs" || second === "referrers")) {
    nameEnd = n - 2;
    endpoint = second;
    ok = isDigest(last);
  } else if (n >= 3 && second === "tags" && last === "list") {
    nameEnd = n - 2;
    endpoint = "tags";
    ok = action === "pull";
  } else {
    throw new Refused("not a repository endpoint");
  }
  if (!ok) {
    throw new Refused("bad reference or method for this endpoint");
  }
  const name = segments.slice(0, nameEnd).join("/");
  const bad = checkRepository(name);
  if (bad !== undefined) {
    throw new Refused(bad);
  }
  return { kind: "repository", name, endpoint, reference: last, action };
}
