/**
 * regpress edge: a Cloudflare Worker in front of the R2 bucket regpress publishes to.
 *
 * It serves the bucket layout (docs/bucket-layout.md) from an R2 binding as the bucket's
 * public endpoint would, and adds what a bucket cannot do: `Docker-Content-Digest` on every
 * manifest and blob (from the stored SHA-256), private repositories checked against
 * `regpress auth`'s registry tokens at the edge with no call back to any server, and pull
 * events. One module per job: {@link parseRequest} (path.ts) reads the request, token.ts and
 * jwks.ts check tokens, serve.ts answers from R2, tags.ts pages tag lists, events.ts sends
 * pull events, config.ts reads the settings; this file routes between them.
 */

import { type Config, type Env, loadConfig } from "./config.js";
import { Outbox, type PullData, httpDelivery, pullEvent, queueDelivery } from "./events.js";
import { Refused, type Target, isDigest, parseRequest } from "./path.js";
import { notFound, serveObject } from "./serve.js";
import { pageOf, paginate } from "./tags.js";
import { type Verified, covers, verifyToken } from "./token.js";

export type { Env } from "./config.js";

/** Sent on every registry response. */
const API_VERSION = { "docker-distribution-api-version": "registry/2.0" };

/** The settings of this isolate, read on its first request. */
let loaded: { env: Env; config: Promise<Config>; outbox: Outbox | undefined } | undefined;

function settings(env: Env): { config: Promise<Config>; outbox: Outbox | undefined } {
  if (loaded?.env !== env) {
    const outbox =
      env.EVENTS_QUEUE !== undefined
        ? new Outbox(queueDelivery(env.EVENTS_QUEUE))
        : env.EVENTS_URL !== undefined && env.EVENTS_URL !== ""
          ? new Outbox(httpDelivery(env.EVENTS_URL, env.EVENTS_TOKEN))
          : undefined;
    loaded = { env, config: loadConfig(env), outbox };
  }
  return loaded;
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const { config: pending, outbox } = settings(env);
    let config: Config;
    try {
      config = await pending;
    } catch (e) {
      console.error(`regpress edge is misconfigured: ${String(e)}`);
      return new Response(`regpress edge is misconfigured: ${String(e)}\n`, { status: 500 });
    }
    const url = new URL(request.url);
    if (url.pathname === "/token" || url.pathname === "/.well-known/jwks.json") {
      return config.authUrl === undefined ? new Response("not found\n", { status: 404 }) : proxy(request, url, config.authUrl);
    }
    if (url.pathname !== "/v2" && !url.pathname.startsWith("/v2/")) {
      return new Response("not found\n", { status: 404 });
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("a static registry is read-only\n", {
        status: 405,
        headers: { ...API_VERSION, allow: "GET, HEAD" },
      });
    }
    let target: Target;
    try {
      target = parseRequest(request.method, url.pathname + url.search);
    } catch (e) {
      if (!(e instanceof Refused)) throw e;
      console.error(`regpress edge: refused ${request.method} ${url.pathname}: ${e.message}`);
      return new Response(`refused: ${e.message}\n`, { status: 403, headers: API_VERSION });
    }
    const handled = await route(request, url, target, config, env, ctx);
    if (outbox !== undefined && target.kind === "repository" && (target.endpoint === "manifests" || (target.endpoint === "blobs" && config.events.blobs))) {
      const data: PullData = {
        repository: target.name,
        reference: target.reference,
        digest: handled.response.headers.get("docker-content-digest"),
        type: target.endpoint === "manifests" ? "manifest" : "blob",
        method: request.method,
        status: handled.response.status,
        identity: handled.identity?.sub ?? "anonymous",
        user_agent: request.headers.get("user-agent"),
        remote_address: request.headers.get("cf-connecting-ip"),
      };
      const batch = outbox.add(pullEvent(config.events.source ?? url.origin, data, new Date()));
      if (batch !== undefined) ctx.waitUntil(batch);
    }
    return handled.response;
  },
} satisfies ExportedHandler<Env>;

/** A response, and the identity of the token that earned it. */
interface Handled {
  response: Response;
  identity: Verified | undefined;
}

async function route(
  request: Request,
  url: URL,
  target: Target,
  config: Config,
  env: Env,
  ctx: ExecutionContext,
): Promise<Handled> {
  const token = bearer(request);
  const auth = config.auth;
  if (target.kind === "catalog" && !config.private.empty) {
    return {
      response: new Response("refused: the catalog would list private repositories\n", { status: 403, headers: API_VERSION }),
      identity: undefined,
    };
  }
  const guarded = target.kind === "base" || (target.kind === "repository" && config.private.matches(target.name));
  if (auth !== undefined && guarded) {
    const scope = target.kind === "repository" ? `repository:${target.name}:pull` : undefined;
    if (token === undefined) {
      return { response: challenge(auth, scope, undefined), identity: undefined };
    }
    let identity: Verified;
    try {
      identity = await verifyToken(token, auth.keys, expect(auth));
    } catch (e) {
      console.error(`regpress edge: ${request.method} ${url.pathname}: invalid token: ${String(e)}`);
      return { response: challenge(auth, scope, "invalid_token"), identity: undefined };
    }
    if (target.kind === "repository" && !covers(identity.access, target.name, "pull")) {
      return { response: challenge(auth, scope, "insufficient_scope"), identity };
    }
    const isPrivate = target.kind === "repository";
    return { response: await answer(request, url, target, config, env, isPrivate, ctx), identity };
  }
  // A public pull needs no token; one that was sent still names who pulled, for the events.
  const identity =
    token !== undefined && auth !== undefined && settings(env).outbox !== undefined
      ? await verifyToken(token, auth.keys, expect(auth)).catch(() => undefined)
      : undefined;
  return { response: await answer(request, url, target, config, env, false, ctx), identity };
}

function expect(auth: NonNullable<Config["auth"]>): { issuer: string; audience: string; now: number } {
  return { issuer: auth.realm, audience: auth.service, now: Date.now() / 1000 };
}

/** Serve the object `target` names. */
async function answer(
  request: Request,
  url: URL,
  target: Target,
  config: Config,
  env: Env,
  isPrivate: boolean,
  ctx: ExecutionContext,
): Promise<Response> {
  const rest = target.kind === "base" ? "" : url.pathname.slice("/v2/".length);
  const key = `${config.prefix}v2/${rest}`;
  const headers = { ...API_VERSION };
  if (target.kind === "repository" && target.endpoint === "tags") {
    let page;
    try {
      page = pageOf(url.searchParams);
    } catch (e) {
      return new Response(`${String(e)}\n`, { status: 400, headers });
    }
    if (page !== undefined) {
      return tagPage(env.BUCKET, key, page, isPrivate, headers);
    }
  }
  const digestHeader = target.kind === "repository" && (target.endpoint === "manifests" || target.endpoint === "blobs");
  const keyDigest = target.kind === "repository" && digestHeader && isDigest(target.reference) ? target.reference : undefined;
  // Public objects are cached at the edge (Cache API), whole GETs only.
  const cacheable =
    !isPrivate &&
    request.method === "GET" &&
    !["range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since"].some((h) => request.headers.has(h));
  const cache = cacheable ? await caches.open("regpress-edge") : undefined;
  const cacheKey = new Request(url.toString(), { method: "GET" });
  if (cache !== undefined) {
    const hit = await cache.match(cacheKey);
    if (hit !== undefined) return hit;
  }
  const { response } = await serveObject(env.BUCKET, key, request, {
    digestHeader,
    keyDigest,
    private: isPrivate,
    headers,
  });
  if (cache !== undefined && response.status === 200) {
    ctx.waitUntil(cache.put(cacheKey, response.clone()));
  }
  return response;
}

async function tagPage(
  bucket: R2Bucket,
  key: string,
  page: NonNullable<ReturnType<typeof pageOf>>,
  isPrivate: boolean,
  headers: Record<string, string>,
): Promise<Response> {
  const object = await bucket.get(key);
  if (object === null) return notFound(key, headers);
  const stored = await object.json<{ name: string; tags: string[] }>();
  const { body, next } = paginate(stored, page);
  const out = new Headers(headers);
  out.set("cache-control", isPrivate ? "private, max-age=60" : (object.httpMetadata?.cacheControl ?? "public, max-age=60"));
  if (next !== undefined) out.set("link", next);
  return Response.json(body, { headers: out });
}

/** The Bearer token of the request, if it sent one. */
function bearer(request: Request): string | undefined {
  const value = request.headers.get("authorization");
  const match = value === null ? null : /^bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}

/** A 401 with the challenge `/check` gives. */
function challenge(auth: NonNullable<Config["auth"]>, scope: string | undefined, error: string | undefined): Response {
  let value = `Bearer realm="${auth.realm}",service="${auth.service}"`;
  if (scope !== undefined) value += `,scope="${scope}"`;
  if (error !== undefined) value += `,error="${error}"`;
  return Response.json(
    { errors: [{ code: "UNAUTHORIZED", message: error ?? "authentication required" }] },
    { status: 401, headers: { ...API_VERSION, "www-authenticate": value, "cache-control": "no-store" } },
  );
}

/** Pass `/token` or the JWKS on to the handler, as the realm's public URL. */
async function proxy(request: Request, url: URL, authUrl: string): Promise<Response> {
  const upstream = `${authUrl}${url.pathname}${url.search}`;
  const init: RequestInit = { method: request.method, headers: request.headers, redirect: "manual" };
  if (request.method !== "GET" && request.method !== "HEAD") init.body = await request.arrayBuffer();
  const response = await fetch(upstream, init);
  return new Response(response.body, response);
}
