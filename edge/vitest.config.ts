import { defineConfig } from "vitest/config";

// Unit tests of the Worker's pure parts (paths, patterns, tokens, keys, events, pages) run in
// Node, whose WebCrypto is the same API workerd's is; the Worker as a whole is tested in
// workerd by tests/edge.rs through edge/dev.sh.
export default defineConfig({ test: { include: ["test/**/*.test.ts"] } });
