/**
 * The public keys of registry tokens: `regpress auth`'s JWKS, given to the Worker as a variable
 * or fetched from the handler's `/.well-known/jwks.json` and kept for a bounded time.
 *
 * Only P-256 keys with a `kid` are imported (registry tokens are ES256 and name their key). A
 * fetched JWKS is kept for its `max-age` within [{@link MIN_TTL}, {@link MAX_TTL}] seconds; a
 * token naming an unknown `kid` refetches early, at most once per {@link REFRESH_COOLDOWN}, so
 * a key rotation at the handler is picked up in seconds while garbage `kid`s cannot make every
 * request a fetch. A fetch that fails keeps the keys already held.
 */

/** Least seconds a fetched JWKS is kept. */
export const MIN_TTL = 30;
/** Most seconds a fetched JWKS is kept, whatever its Cache-Control says. */
export const MAX_TTL = 3600;
/** Least seconds between early refetches caused by an unknown `kid`. */
export const REFRESH_COOLDOWN = 30;
/** Largest JWKS read. */
const MAX_JWKS_BYTES = 64 * 1024;

/** A JWKS as JSON. */
interface JwksDocument {
  keys?: unknown;
}

/** Import every usable key of a JWKS document, by `kid`. Throws when none is usable. */
export async function importJwks(doc: unknown): Promise<Map<string, CryptoKey>> {
  const keys = new Map<string, CryptoKey>();
  const list = (doc as JwksDocument | null)?.keys;
  if (!Array.isArray(list)) {
    throw new Error("not a JWKS: no keys array");
  }
  for (const jwk of list as unknown[]) {
    if (typeof jwk !== "object" || jwk === null) continue;
    const k = jwk as Record<string, unknown>;
    if (k.kty !== "EC" || k.crv !== "P-256" || typeof k.kid !== "string") continue;
    if (typeof k.x !== "string" || typeof k.y !== "string") continue;
    const key = await crypto.subtle.importKey(
      "jwk",
      { kty: "EC", crv: "P-256", x: k.x, y: k.y },
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["verify"],
    );
    keys.set(k.kid, key);
  }
  if (keys.size === 0) {
    throw new Error("the JWKS has no P-256 key with a kid");
  }
  return keys;
}

/** Where keys come from. */
export interface KeySource {
  /** The key named `kid`, or undefined when there is none (after a refresh if allowed). */
  key(kid: string, now: number): Promise<CryptoKey | undefined>;
}

/** A JWKS fixed by configuration. */
export class StaticKeys implements KeySource {
  constructor(readonly keys: Map<string, CryptoKey>) {}

  key(kid: string): Promise<CryptoKey | undefined> {
    return Promise.resolve(this.keys.get(kid));
  }
}

/** A JWKS fetched from a URL, cached with a bounded lifetime. */
export class FetchedKeys implements KeySource {
  #keys = new Map<string, CryptoKey>();
  #expires = 0;
  #lastFetch = -Infinity;
  #pending: Promise<void> | undefined;

  constructor(
    readonly url: string,
    readonly fetcher: (url: string) => Promise<Response> = (u) => fetch(u),
  ) {}

  async key(kid: string, now: number): Promise<CryptoKey | undefined> {
    if (now >= this.#expires) {
      await this.#refresh(now);
    } else if (!this.#keys.has(kid) && now - this.#lastFetch >= REFRESH_COOLDOWN) {
      await this.#refresh(now);
    }
    return this.#keys.get(kid);
  }

  /** Fetch once for all concurrent callers. */
  #refresh(now: number): Promise<void> {
    this.#pending ??= this.#fetch(now).finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #fetch(now: number): Promise<void> {
    this.#lastFetch = now;
    try {
      const response = await this.fetcher(this.url);
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      const text = await response.text();
      if (text.length > MAX_JWKS_BYTES) {
        throw new Error(`larger than ${MAX_JWKS_BYTES} bytes`);
      }
      this.#keys = await importJwks(JSON.parse(text));
      this.#expires = now + ttl(response.headers.get("cache-control"));
    } catch (e) {
      // Keep what we have; try again after the cooldown rather than on every request.
      this.#expires = Math.max(this.#expires, now + REFRESH_COOLDOWN);
      console.error(`regpress edge: cannot fetch the JWKS at ${this.url}: ${String(e)}`);
    }
  }
}

/** Seconds to keep a JWKS served with `cacheControl`. */
export function ttl(cacheControl: string | null): number {
  const maxAge = /(?:^|[\s,])max-age=(\d+)/.exec(cacheControl ?? "")?.[1];
  const seconds = maxAge === undefined ? 300 : Number(maxAge);
  return Math.min(MAX_TTL, Math.max(MIN_TTL, seconds));
}
