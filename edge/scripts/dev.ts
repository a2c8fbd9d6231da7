/**
 * The local run of the Worker in workerd (Miniflare), behind `edge/dev.sh`: loads a
 * `regpress publish --to SITE_DIR` directory site into a local R2 bucket, each object with the
 * Content-Type, Cache-Control and SHA-256 of its `.regpress/meta` record (and the sha256 as the
 * custom metadata `digest`, as regpress's `x-amz-meta-digest` arrives on R2), then serves on
 * 127.0.0.1:PORT until SIGTERM or SIGINT. Tests, benchmarks and a user's dry run reach the
 * Worker this way.
 *
 * A file whose record is missing or does not describe it (size, or sha256 of a mutable object)
 * is not loaded, as `regpress serve` would not serve it.
 */

import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { Miniflare } from "miniflare";

const USAGE =
  "usage: edge/dev.sh SITE_DIR PORT [--private PATTERN]... [--jwks FILE_OR_URL] [--service NAME] " +
  "[--realm URL] [--auth URL] [--events URL] [--events-blobs] [--prefix PREFIX]";

interface Options {
  site: string;
  port: number;
  worker: string;
  private: string[];
  jwks: string | undefined;
  service: string | undefined;
  realm: string | undefined;
  auth: string | undefined;
  events: string | undefined;
  eventsBlobs: boolean;
  prefix: string;
}

function fail(message: string): never {
  console.error(`edge/dev.sh: ${message}\n${USAGE}`);
  process.exit(2);
}

function parse(argv: string[]): Options {
  const [worker, site, port, ...rest] = argv;
  if (worker === undefined || site === undefined || port === undefined) fail("SITE_DIR and PORT are required");
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) fail(`PORT ${JSON.stringify(port)} is not a port number`);
  const options: Options = {
    site,
    port: Number(port),
    worker,
    private: [],
    jwks: undefined,
    service: undefined,
    realm: undefined,
    auth: undefined,
    events: undefined,
    eventsBlobs: false,
    prefix: "",
  };
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i] ?? "";
    if (flag === "--events-blobs") {
      options.eventsBlobs = true;
      continue;
    }
    const value = rest[++i];
    if (value === undefined) fail(`${flag} needs a value`);
    switch (flag) {
      case "--private":
        options.private.push(value);
        break;
      case "--jwks":
        options.jwks = value;
        break;
      case "--service":
        options.service = value;
        break;
      case "--realm":
        options.realm = value;
        break;
      case "--auth":
        options.auth = value;
        break;
      case "--events":
        options.events = value;
        break;
      case "--prefix":
        options.prefix = value.replace(/^\/+|\/+$/g, "");
        break;
      default:
        fail(`unknown flag ${JSON.stringify(flag)}`);
    }
  }
  return options;
}

/** The site's record of one object. */
interface Meta {
  content_type: string;
  cache_control: string;
  sha256: string;
  size: number;
}

/** Every object of the site: key, body, record. */
function* objects(site: string): Generator<{ key: string; body: Buffer; meta: Meta }> {
  const state = join(site, ".regpress");
  const walk = function* (dir: string): Generator<string> {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (path === state) continue;
      if (entry.isDirectory()) yield* walk(path);
      else if (entry.isFile()) yield path;
    }
  };
  for (const path of walk(site)) {
    const rel = relative(site, path).split(sep);
    const last = rel[rel.length - 1] ?? "";
    if (rel.slice(0, -1).some((p) => p.startsWith("."))) continue;
    const key = last === ".slash" ? `${rel.slice(0, -1).join("/")}/` : last.startsWith(".") ? undefined : rel.join("/");
    if (key === undefined) continue;
    let meta: Meta;
    try {
      meta = JSON.parse(readFileSync(join(state, "meta", `${relative(site, path)}.json`), "utf8")) as Meta;
    } catch (e) {
      console.error(`edge/dev.sh: ${key} not loaded: no readable record (${String(e)})`);
      continue;
    }
    const body = readFileSync(path);
    const sha256 = `sha256:${createHash("sha256").update(body).digest("hex")}`;
    if (body.length !== meta.size || sha256 !== meta.sha256) {
      console.error(`edge/dev.sh: ${key} not loaded: its record describes other content (${meta.sha256}, ${meta.size} bytes)`);
      continue;
    }
    yield { key, body, meta };
  }
}

function jwksBindings(jwks: string | undefined): Record<string, string> {
  if (jwks === undefined) return {};
  if (/^https?:\/\//.test(jwks)) return { JWKS_URL: jwks };
  try {
    return { JWKS: readFileSync(jwks, "utf8") };
  } catch (e) {
    fail(`--jwks ${jwks}: ${String(e)}`);
  }
}

async function main(): Promise<void> {
  const options = parse(process.argv.slice(2));
  try {
    if (!statSync(join(options.site, "v2")).isDirectory()) throw new Error("no v2/");
  } catch (e) {
    fail(`${options.site} is not a published site (${String(e)}): publish to it first with regpress publish --to`);
  }
  const bindings: Record<string, string | string[]> = {
    PREFIX: options.prefix,
    PRIVATE: options.private,
    SERVICE: options.service ?? `127.0.0.1:${options.port}`,
    REALM: options.realm ?? `http://127.0.0.1:${options.port}/token`,
    ...jwksBindings(options.jwks),
    ...(options.auth === undefined ? {} : { AUTH_URL: options.auth }),
    ...(options.events === undefined ? {} : { EVENTS_URL: options.events }),
    ...(process.env.REGPRESS_EVENTS_TOKEN === undefined ? {} : { EVENTS_TOKEN: process.env.REGPRESS_EVENTS_TOKEN }),
    EVENTS_BLOBS: String(options.eventsBlobs),
  };
  const mf = new Miniflare({
    modules: true,
    scriptPath: options.worker,
    modulesRoot: dirname(options.worker),
    compatibilityDate: "2026-04-26",
    r2Buckets: ["BUCKET"],
    bindings,
    host: "127.0.0.1",
    port: options.port,
  });
  const url = await mf.ready;
  const bucket = await mf.getR2Bucket("BUCKET");
  const prefix = options.prefix === "" ? "" : `${options.prefix}/`;
  let count = 0;
  for (const { key, body, meta } of objects(options.site)) {
    // A copy in an ArrayBuffer of its own: Miniflare's proxy refuses views into Node's pool.
    await bucket.put(`${prefix}${key}`, new Uint8Array(body).buffer, {
      httpMetadata: { contentType: meta.content_type, cacheControl: meta.cache_control },
      sha256: meta.sha256.slice("sha256:".length),
      customMetadata: { digest: meta.sha256 },
    });
    count++;
  }
  const stop = (): void => {
    mf.dispose().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  console.log(`regpress edge: ${count} objects of ${options.site} in workerd at ${url.origin}/`);
}

main().catch((e: unknown) => {
  console.error(`edge/dev.sh: ${e instanceof Error && e.stack !== undefined ? e.stack : String(e)}`);
  process.exit(1);
});
