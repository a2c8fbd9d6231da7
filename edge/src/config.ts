/**
 * The Worker's settings, read once per isolate from its bindings and variables (wrangler.toml
 * `[vars]`, secrets, or `edge/dev.sh`'s flags) into a checked {@link Config}. A setting that
 * cannot work (private repositories without a service, realm or keys; a pattern that does not
 * compile) is an error naming the variable, answered as a 500 on every request and logged,
 * rather than a Worker that quietly serves private images to anyone.
 */

import type { PullEvent } from "./events.js";
import { FetchedKeys, type KeySource, StaticKeys, importJwks } from "./jwks.js";
import { Patterns } from "./glob.js";

/** Bindings and variables of the Worker. */
export interface Env {
  /** The R2 bucket regpress publishes to. */
  BUCKET: R2Bucket;
  /** Key prefix, as in `--to s3://BUCKET/PREFIX` (without slashes around it, or empty). */
  PREFIX?: string;
  /** Private repository patterns (`auth.toml` globs), a list or a comma/space separated string. */
  PRIVATE?: string | string[];
  /** The registry's name: `service` in challenges and the `aud` of registry tokens. */
  SERVICE?: string;
  /** The public URL of `/token`, in challenges; registry tokens' `iss`. */
  REALM?: string;
  /** `regpress auth`'s JWKS, as JSON text or an object. */
  JWKS?: string | object;
  /** Where to fetch the JWKS instead (cached; see jwks.ts). */
  JWKS_URL?: string;
  /** The handler's base URL: `/token` and `/.well-known/jwks.json` are proxied to it. */
  AUTH_URL?: string;
  /** Where to POST pull events. */
  EVENTS_URL?: string;
  /** Bearer token for `EVENTS_URL` (a secret). */
  EVENTS_TOKEN?: string;
  /** A Queue to send pull events to instead. */
  EVENTS_QUEUE?: Queue<PullEvent>;
  /** `true`: blob pulls send events too. */
  EVENTS_BLOBS?: string;
  /** The events' `source` (default: the request's origin). */
  EVENTS_SOURCE?: string;
}

/** Checked settings. */
export interface Config {
  prefix: string;
  private: Patterns;
  /** Present when some repository is private. */
  auth: { service: string; realm: string; keys: KeySource } | undefined;
  authUrl: string | undefined;
  events: { url: string | undefined; token: string | undefined; blobs: boolean; source: string | undefined };
}

/** Read and check `env`; throws naming the variable at fault. */
export async function loadConfig(env: Env): Promise<Config> {
  const prefix = (env.PREFIX ?? "").replace(/^\/+|\/+$/g, "");
  const patterns = typeof env.PRIVATE === "string" ? env.PRIVATE.split(/[\s,]+/) : (env.PRIVATE ?? []);
  let privatePatterns: Patterns;
  try {
    privatePatterns = new Patterns(patterns.filter((p) => p !== ""));
  } catch (e) {
    throw new Error(`PRIVATE: ${String(e)}`);
  }
  const authUrl = nonEmpty(env.AUTH_URL)?.replace(/\/+$/, "");
  let auth: Config["auth"];
  if (!privatePatterns.empty) {
    const service = nonEmpty(env.SERVICE);
    const realm = nonEmpty(env.REALM);
    if (service === undefined || realm === undefined) {
      throw new Error("PRIVATE is set: SERVICE and REALM must be too (as in auth.toml)");
    }
    for (const [name, value] of [
      ["SERVICE", service],
      ["REALM", realm],
    ]) {
      if (!/^[\x20-\x7e]*$/.test(value ?? "") || /["\\]/.test(value ?? "")) {
        throw new Error(`${name} must be printable ASCII without " or \\ (it is quoted in WWW-Authenticate)`);
      }
    }
    auth = { service, realm, keys: await keySource(env, authUrl) };
  }
  return {
    prefix: prefix === "" ? "" : `${prefix}/`,
    private: privatePatterns,
    auth,
    authUrl,
    events: {
      url: nonEmpty(env.EVENTS_URL),
      token: nonEmpty(env.EVENTS_TOKEN),
      blobs: env.EVENTS_BLOBS === "true",
      source: nonEmpty(env.EVENTS_SOURCE),
    },
  };
}

async function keySource(env: Env, authUrl: string | undefined): Promise<KeySource> {
  if (env.JWKS !== undefined && env.JWKS !== "") {
    try {
      return new StaticKeys(await importJwks(typeof env.JWKS === "string" ? JSON.parse(env.JWKS) : env.JWKS));
    } catch (e) {
      throw new Error(`JWKS: ${String(e)}`);
    }
  }
  const url = nonEmpty(env.JWKS_URL) ?? (authUrl === undefined ? undefined : `${authUrl}/.well-known/jwks.json`);
  if (url === undefined) {
    throw new Error("PRIVATE is set: give the handler's keys as JWKS, JWKS_URL or AUTH_URL");
  }
  return new FetchedKeys(url);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
