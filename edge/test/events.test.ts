import { describe, expect, it } from "vitest";
import { MAX_BATCH, MAX_BUFFERED, Outbox, PULL, type PullData, type PullEvent, pullEvent } from "../src/events.js";
import { privately, storedDigest } from "../src/serve.js";
import { pageOf, paginate } from "../src/tags.js";

const data: PullData = {
  repository: "acme/app",
  reference: "latest",
  digest: "sha256:" + "a".repeat(64),
  type: "manifest",
  method: "GET",
  status: 200,
  identity: "repo:acme/app:ref:refs/heads/main",
  user_agent: "docker/28",
  remote_address: "192.0.2.1",
};

describe("pull events", () => {
  it("are CloudEvents in the publish events' shape", () => {
    const e = pullEvent("https://cr.example.com", data, new Date(0));
    expect(e).toMatchObject({
      specversion: "1.0",
      type: PULL,
      source: "https://cr.example.com",
      datacontenttype: "application/json",
      subject: "acme/app:latest",
      time: "1970-01-01T00:00:00.000Z",
      data,
    });
    expect(pullEvent("s", { ...data, reference: data.digest ?? "" }, new Date()).subject).toBe(`acme/app@${data.digest}`);
  });

  it("are batched, bounded, and a failed delivery throws nowhere", async () => {
    const batches: PullEvent[][] = [];
    const outbox = new Outbox((batch) => {
      batches.push(batch);
      return Promise.reject(new Error("receiver down"));
    }, 10);
    const first = outbox.add(pullEvent("s", data, new Date()));
    expect(first).toBeDefined();
    for (let i = 1; i < MAX_BUFFERED + 50; i++) {
      expect(outbox.add(pullEvent("s", data, new Date()))).toBeUndefined();
    }
    await first;
    expect(batches.map((b) => b.length)).toEqual(Array(MAX_BUFFERED / MAX_BATCH).fill(MAX_BATCH));
    // The next event opens a new batch.
    const second = outbox.add(pullEvent("s", data, new Date()));
    expect(second).toBeDefined();
    await second;
    expect(batches.length).toBe(MAX_BUFFERED / MAX_BATCH + 1);
  });
});

describe("responses", () => {
  it("take the digest from the stored checksum, else the digest metadata", () => {
    const sha = new Uint8Array(32).fill(0xab).buffer;
    expect(storedDigest({ checksums: { sha256: sha, toJSON: () => ({}) }, customMetadata: {} })).toBe(`sha256:${"ab".repeat(32)}`);
    expect(storedDigest({ checksums: { toJSON: () => ({}) }, customMetadata: { digest: `sha256:${"cd".repeat(32)}` } })).toBe(
      `sha256:${"cd".repeat(32)}`,
    );
    expect(storedDigest({ checksums: { toJSON: () => ({}) }, customMetadata: { digest: "md5:x" } })).toBeUndefined();
  });

  it("make stored Cache-Control private", () => {
    expect(privately("public, max-age=31536000, immutable")).toBe("private, max-age=31536000, immutable");
    expect(privately(null)).toBe("private");
  });

  it("page tag lists with n and last", () => {
    const list = { name: "acme/app", tags: ["c", "a", "b", "d"] };
    expect(pageOf(new URLSearchParams(""))).toBeUndefined();
    expect(() => pageOf(new URLSearchParams("n=-1"))).toThrow("not a count");
    const page = (q: string) => paginate(list, pageOf(new URLSearchParams(q)) ?? { n: undefined, last: undefined });
    expect(page("n=2")).toEqual({
      body: { name: "acme/app", tags: ["a", "b"] },
      next: '</v2/acme/app/tags/list?n=2&last=b>; rel="next"',
    });
    expect(page("n=2&last=b")).toEqual({ body: { name: "acme/app", tags: ["c", "d"] }, next: undefined });
    expect(page("last=c").body.tags).toEqual(["d"]);
    expect(page("n=0").body.tags).toEqual([]);
  });
});
