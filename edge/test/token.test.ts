import { beforeAll, describe, expect, it } from "vitest";
import { FetchedKeys, REFRESH_COOLDOWN, StaticKeys, importJwks, ttl } from "../src/jwks.js";
import { LEEWAY, MAX_TOKEN_BYTES, covers, verifyToken } from "../src/token.js";

const ISSUER = "https://cr.example.com/token";
const SERVICE = "cr.example.com";
const NOW = 1_800_000_000;

function b64(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

interface Key {
  kid: string;
  pair: CryptoKeyPair;
  jwk: JsonWebKey & { kid: string };
}

async function newKey(kid: string): Promise<Key> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const jwk = (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey;
  return { kid, pair, jwk: { ...jwk, kid } };
}

async function sign(key: Key, claims: object, header: object = { alg: "ES256", typ: "JWT", kid: key.kid }): Promise<string> {
  const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims))}`;
  const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.pair.privateKey, new TextEncoder().encode(input));
  return `${input}.${b64(new Uint8Array(sig))}`;
}

function claims(overrides: object = {}): object {
  return {
    iss: ISSUER,
    sub: "repo:acme/app:ref:refs/heads/main",
    aud: SERVICE,
    exp: NOW + 300,
    nbf: NOW,
    iat: NOW,
    jti: "0123",
    access: [{ type: "repository", name: "acme/app", actions: ["pull"] }],
    ...overrides,
  };
}

const expected = { issuer: ISSUER, audience: SERVICE, now: NOW };

let ours: Key;
let theirs: Key;
let keys: StaticKeys;

beforeAll(async () => {
  ours = await newKey("ours");
  theirs = await newKey("theirs");
  keys = new StaticKeys(await importJwks({ keys: [ours.jwk] }));
});

describe("verifyToken", () => {
  it("accepts the handler's tokens and returns their identity and access", async () => {
    const v = await verifyToken(await sign(ours, claims()), keys, expected);
    expect(v.sub).toBe("repo:acme/app:ref:refs/heads/main");
    expect(covers(v.access, "acme/app", "pull")).toBe(true);
    expect(covers(v.access, "acme/app", "push")).toBe(false);
    expect(covers(v.access, "acme/other", "pull")).toBe(false);
    // Within the leeway on both ends.
    await verifyToken(await sign(ours, claims({ exp: NOW - LEEWAY + 1 })), keys, expected);
    await verifyToken(await sign(ours, claims({ nbf: NOW + LEEWAY - 1 })), keys, expected);
  });

  it("refuses every bad token with its reason", async () => {
    const none = `${b64(JSON.stringify({ alg: "none", kid: "ours" }))}.${b64(JSON.stringify(claims()))}.`;
    const good = await sign(ours, claims());
    const [h, c, s] = good.split(".");
    const cases: [string, string][] = [
      [none, "is not ES256"],
      [await sign(ours, claims(), { alg: "HS256", kid: "ours" }), "is not ES256"],
      [await sign(ours, claims(), { alg: "ES384", kid: "ours" }), "is not ES256"],
      [await sign(ours, claims(), { alg: "ES256" }), "no kid"],
      [await sign(ours, claims(), { alg: "ES256", kid: "ours", crit: ["exp"] }), "crit"],
      [await sign(theirs, claims()), "another key"],
      // Their key under our kid: the signature does not verify.
      [await sign({ ...theirs, kid: "ours" }, claims()), "invalid signature"],
      [`${h}.${b64(JSON.stringify(claims({ access: [{ type: "repository", name: "acme/other", actions: ["pull"] }] })))}.${s}`, "invalid signature"],
      [`${h}.${c}.${b64(new Uint8Array(70))}`, "64 bytes"],
      [await sign(ours, claims({ exp: NOW - LEEWAY - 1 })), "expired"],
      [await sign(ours, claims({ nbf: NOW + LEEWAY + 1 })), "nbf"],
      [await sign(ours, claims({ exp: undefined })), "required"],
      [await sign(ours, claims({ nbf: undefined })), "required"],
      [await sign(ours, claims({ aud: "someone-else" })), "audience"],
      [await sign(ours, claims({ iss: "https://evil.example.com/token" })), "issuer"],
      [await sign(ours, claims({ sub: 7 })), "sub"],
      [await sign(ours, claims({ access: "all" })), "access"],
      ["a.b", "three"],
      ["!!!.b.c", "malformed header"],
      ["a".repeat(MAX_TOKEN_BYTES + 1), "larger"],
    ];
    for (const [token, why] of cases) {
      await expect(verifyToken(token, keys, expected), why).rejects.toThrow(why);
    }
  });

  it("reads aud given as a list", async () => {
    await verifyToken(await sign(ours, claims({ aud: ["other", SERVICE] })), keys, expected);
  });
});

describe("keys", () => {
  it("imports only P-256 keys with a kid and refuses a JWKS without one", async () => {
    const rsa = { kty: "RSA", kid: "r", n: "AQAB", e: "AQAB" };
    const noKid = { ...ours.jwk, kid: undefined };
    expect((await importJwks({ keys: [rsa, noKid, ours.jwk] })).size).toBe(1);
    await expect(importJwks({ keys: [rsa] })).rejects.toThrow("no P-256 key");
    await expect(importJwks({})).rejects.toThrow("no keys array");
  });

  it("keeps a fetched JWKS for a bounded time and refetches early for an unknown kid, with a cooldown", async () => {
    let fetches = 0;
    let published = [ours.jwk];
    let down = false;
    const fetcher = () => {
      fetches++;
      if (down) return Promise.resolve(new Response("no", { status: 503 }));
      return Promise.resolve(Response.json({ keys: published }, { headers: { "cache-control": "public, max-age=300" } }));
    };
    const source = new FetchedKeys("https://auth/jwks", fetcher);
    expect(await source.key("ours", NOW)).toBeDefined();
    expect(await source.key("ours", NOW + 10)).toBeDefined();
    expect(fetches).toBe(1);
    // An unknown kid within the cooldown: no fetch.
    expect(await source.key("theirs", NOW + 10)).toBeUndefined();
    expect(fetches).toBe(1);
    // A rotation, seen after the cooldown.
    published = [ours.jwk, theirs.jwk];
    expect(await source.key("theirs", NOW + REFRESH_COOLDOWN + 1)).toBeDefined();
    expect(fetches).toBe(2);
    // Expired, and the handler is down: the keys held stay.
    down = true;
    expect(await source.key("ours", NOW + 10_000)).toBeDefined();
    expect(fetches).toBe(3);
    expect(await source.key("ours", NOW + 10_001)).toBeDefined();
    expect(fetches).toBe(3);
  });

  it("bounds the lifetime whatever Cache-Control says", () => {
    expect(ttl("public, max-age=300")).toBe(300);
    expect(ttl("max-age=0")).toBe(30);
    expect(ttl("max-age=999999")).toBe(3600);
    expect(ttl(null)).toBe(300);
  });
});
