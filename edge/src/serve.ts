/**
 * Answer from the R2 bucket exactly as the bucket's public endpoint would: the stored
 * Content-Type and Cache-Control, Content-Length, ETag, Range (206, or 416), conditional
 * requests (304, 412), HEAD, 404 for a missing key; plus what a bucket cannot send:
 * `Docker-Content-Digest` from the object's stored SHA-256, never by hashing on the request
 * path.
 *
 * regpress writes each object's sha256 twice on R2 (src/store/s3.rs): as
 * `x-amz-checksum-sha256`, which R2 checks against the bytes and keeps as the object's SHA-256
 * checksum, and as `x-amz-meta-digest`, which R2 keeps as the custom metadata `digest`. The
 * checksum is preferred; the metadata is read for objects stored without one (copies made by
 * tools that drop checksums).
 */

/** The stored digest of `object`, `sha256:<hex>`, when it has one. */
export function storedDigest(object: Pick<R2Object, "checksums" | "customMetadata">): string | undefined {
  const sha256 = object.checksums.sha256;
  if (sha256 !== undefined && sha256.byteLength === 32) {
    return `sha256:${hex(new Uint8Array(sha256))}`;
  }
  const meta = object.customMetadata?.digest;
  if (meta !== undefined && /^sha256:[0-9a-f]{64}$/.test(meta)) {
    return meta;
  }
  return undefined;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** What a served object answers with. */
export interface Served {
  response: Response;
  /** The digest sent as Docker-Content-Digest, if any. */
  digest: string | undefined;
}

/** How one object is to be answered. */
export interface ServeOptions {
  /** Send Docker-Content-Digest (manifests and blobs). */
  digestHeader: boolean;
  /** The digest the key names (content-addressed keys), checked against the stored one. */
  keyDigest: string | undefined;
  /** Answer `Cache-Control: private, …` instead of the stored value. */
  private: boolean;
  /** Headers every response gets. */
  headers: Record<string, string>;
}

/** Answer a GET or HEAD of `key`. */
export async function serveObject(
  bucket: R2Bucket,
  key: string,
  request: Request,
  options: ServeOptions,
): Promise<Served> {
  const head = request.method === "HEAD";
  const conditional = ["if-match", "if-none-match", "if-modified-since", "if-unmodified-since"].some((h) =>
    request.headers.has(h),
  );
  const ranged = !head && request.headers.has("range");
  let object: R2Object | R2ObjectBody | null;
  try {
    object = head
      ? await bucket.head(key)
      : await bucket.get(key, {
          ...(conditional ? { onlyIf: request.headers } : {}),
          ...(ranged ? { range: request.headers } : {}),
        });
  } catch (e) {
    // R2 refuses a range it cannot satisfy with an error, not an object.
    if (ranged && /range/i.test(String(e))) {
      const size = (await bucket.head(key))?.size;
      return {
        response: new Response(null, {
          status: 416,
          headers: { ...options.headers, ...(size === undefined ? {} : { "content-range": `bytes */${size}` }) },
        }),
        digest: undefined,
      };
    }
    throw e;
  }
  if (object === null) {
    return { response: notFound(key, options.headers), digest: undefined };
  }
  const headers = new Headers(options.headers);
  object.writeHttpMetadata(headers);
  headers.set("etag", object.httpEtag);
  headers.set("last-modified", object.uploaded.toUTCString());
  headers.set("accept-ranges", "bytes");
  const cacheControl = headers.get("cache-control");
  if (options.private) {
    headers.set("cache-control", privately(cacheControl));
  }
  const digest = options.digestHeader ? storedDigest(object) : undefined;
  if (options.keyDigest !== undefined && digest !== undefined && digest !== options.keyDigest) {
    console.error(`regpress edge: ${key} is stored with digest ${digest}: not served`);
    return {
      response: new Response(`${key} does not hold the content its digest names\n`, {
        status: 500,
        headers: options.headers,
      }),
      digest: undefined,
    };
  }
  if (digest !== undefined) {
    headers.set("docker-content-digest", digest);
  }
  if (head) {
    headers.set("content-length", String(object.size));
    return { response: new Response(null, { status: 200, headers }), digest };
  }
  if (!hasBody(object)) {
    // A precondition failed: R2 gives the object's metadata without its body.
    const notModified = request.headers.has("if-none-match") || request.headers.has("if-modified-since");
    return { response: new Response(null, { status: notModified ? 304 : 412, headers }), digest };
  }
  const range = object.range as { offset?: number; length?: number; suffix?: number } | undefined;
  if (ranged && range !== undefined) {
    const offset = range.suffix !== undefined ? object.size - range.suffix : (range.offset ?? 0);
    const length = range.suffix ?? range.length ?? object.size - offset;
    headers.set("content-range", `bytes ${offset}-${offset + length - 1}/${object.size}`);
    headers.set("content-length", String(length));
    return { response: new Response(object.body, { status: 206, headers }), digest };
  }
  headers.set("content-length", String(object.size));
  return { response: new Response(object.body, { status: 200, headers }), digest };
}

function hasBody(object: R2Object | R2ObjectBody): object is R2ObjectBody {
  return "body" in object;
}

/** Cache-Control for a private response: the stored directives with `public` made `private`. */
export function privately(stored: string | null): string {
  const kept = (stored ?? "")
    .split(",")
    .map((d) => d.trim())
    .filter((d) => d !== "" && d.toLowerCase() !== "public" && d.toLowerCase() !== "private");
  return ["private", ...kept].join(", ");
}

/** A 404 in the distribution spec's error shape. */
export function notFound(key: string, headers: Record<string, string>): Response {
  const code = key.includes("/blobs/") ? "BLOB_UNKNOWN" : key.includes("/manifests/") ? "MANIFEST_UNKNOWN" : "NOT_FOUND";
  return Response.json(
    { errors: [{ code, message: "not found" }] },
    { status: 404, headers: { ...headers, "cache-control": "no-store" } },
  );
}
