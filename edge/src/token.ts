/**
 * Registry tokens as `regpress auth` mints them (crates/regpress-auth/src/token.rs), checked
 * with WebCrypto: an ES256 JWS whose header names its key (`kid`), with `iss` (the realm),
 * `sub`, `aud` (the service), `exp`, `nbf`, `iat`, `jti` and `access: [{type, name, actions}]`.
 *
 * The checks are the handler's: at most {@link MAX_TOKEN_BYTES}, `alg` exactly ES256 (so
 * `none` and HMAC are refused before any key is looked at), no `crit`, a known `kid`, a valid
 * signature, `iss` = realm, `aud` = service, `exp` and `nbf` required and honoured with
 * {@link LEEWAY} seconds of leeway, `sub` a string.
 */

import type { KeySource } from "./jwks.js";

/** Largest token parsed (the handler's limit). */
export const MAX_TOKEN_BYTES = 8192;
/** Seconds of clock skew allowed on `exp` and `nbf` (the handler's). */
export const LEEWAY = 60;

/** One entry of the `access` claim. */
export interface Access {
  type: string;
  name: string;
  actions: string[];
}

/** A token that passed every check. */
export interface Verified {
  /** The identity the handler saw (`sub`): an ID token's subject, or `anonymous`. */
  sub: string;
  access: Access[];
}

/** What a token must be for. */
export interface Expect {
  issuer: string;
  audience: string;
  /** Seconds since the epoch. */
  now: number;
}

/** Check `token`; returns its identity and access, or throws saying why it is refused. */
export async function verifyToken(token: string, keys: KeySource, expect: Expect): Promise<Verified> {
  if (token.length > MAX_TOKEN_BYTES) {
    throw new Error(`token larger than ${MAX_TOKEN_BYTES} bytes`);
  }
  const parts = token.split(".");
  if (parts.length !== 3) {
    throw new Error("malformed: not three dot-separated parts");
  }
  const [headerPart = "", claimsPart = "", signaturePart = ""] = parts;
  const header = jsonObject(headerPart, "header");
  if (header.alg !== "ES256") {
    throw new Error(`algorithm ${JSON.stringify(header.alg)} is not ES256`);
  }
  if ("crit" in header) {
    throw new Error("crit header is not supported");
  }
  if (typeof header.kid !== "string") {
    throw new Error("no kid in the header");
  }
  const key = await keys.key(header.kid, expect.now);
  if (key === undefined) {
    throw new Error("signed with another key");
  }
  const signature = base64url(signaturePart, "signature");
  if (signature.length !== 64) {
    throw new Error("signature is not 64 bytes (ES256 r||s)");
  }
  const signed = new TextEncoder().encode(`${headerPart}.${claimsPart}`);
  const valid = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, signature, signed);
  if (!valid) {
    throw new Error("invalid signature");
  }
  const claims = jsonObject(claimsPart, "claims");
  if (claims.iss !== expect.issuer) {
    throw new Error(`issuer ${JSON.stringify(claims.iss)} is not ${JSON.stringify(expect.issuer)}`);
  }
  const aud = claims.aud;
  const audiences = Array.isArray(aud) ? (aud as unknown[]) : [aud];
  if (!audiences.includes(expect.audience)) {
    throw new Error(`audience ${JSON.stringify(aud)} is not ${JSON.stringify(expect.audience)}`);
  }
  if (typeof claims.sub !== "string") {
    throw new Error("no sub claim");
  }
  if (typeof claims.exp !== "number" || typeof claims.nbf !== "number") {
    throw new Error("exp and nbf are required");
  }
  if (claims.exp < expect.now - LEEWAY) {
    throw new Error("expired");
  }
  if (claims.nbf > expect.now + LEEWAY) {
    throw new Error("not valid yet (nbf)");
  }
  return { sub: claims.sub, access: accessOf(claims.access) };
}

/** Whether `access` allows `action` on `repository`. */
export function covers(access: readonly Access[], repository: string, action: string): boolean {
  return access.some((a) => a.type === "repository" && a.name === repository && a.actions.includes(action));
}

function accessOf(value: unknown): Access[] {
  if (!Array.isArray(value)) {
    throw new Error("access claim is not a list");
  }
  return (value as unknown[]).filter(isAccess);
}

function isAccess(v: unknown): v is Access {
  if (typeof v !== "object" || v === null) return false;
  const a = v as Record<string, unknown>;
  return (
    typeof a.type === "string" &&
    typeof a.name === "string" &&
    Array.isArray(a.actions) &&
    (a.actions as unknown[]).every((x) => typeof x === "string")
  );
}

function jsonObject(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(base64url(part, what)));
  } catch {
    throw new Error(`malformed ${what}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`malformed ${what}: not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Decode unpadded base64url strictly. */
export function base64url(text: string, what: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new Error(`malformed ${what}: not base64url`);
  }
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
