import { describe, expect, it } from "vitest";
import { Patterns } from "../src/glob.js";

describe("Patterns", () => {
  it("keeps * and ? within a component and lets ** cross them, as auth.toml's globs", () => {
    const p = (pattern: string) => new Patterns([pattern]);
    expect(p("acme/*").matches("acme/app")).toBe(true);
    expect(p("acme/*").matches("acme/app/cache")).toBe(false);
    expect(p("acme/*").matches("acme")).toBe(false);
    expect(p("public/**").matches("public/a/b/c")).toBe(true);
    expect(p("public/**").matches("publicx/a")).toBe(false);
    expect(p("**/cache").matches("cache")).toBe(true);
    expect(p("**/cache").matches("a/b/cache")).toBe(true);
    expect(p("a/**/b").matches("a/b")).toBe(true);
    expect(p("a/**/b").matches("a/x/y/b")).toBe(true);
    expect(p("a/**/b").matches("a/x/y/c")).toBe(false);
    expect(p("acme/app").matches("acme/app-evil")).toBe(false);
    expect(p("acme/ap?").matches("acme/app")).toBe(true);
    expect(p("acme/{app,web}").matches("acme/web")).toBe(true);
    expect(p("acme/{app,web}").matches("acme/db")).toBe(false);
    expect(p("acme/[ab]pp").matches("acme/bpp")).toBe(true);
    expect(p("acme/[!ab]pp").matches("acme/app")).toBe(false);
    expect(p("a.b/c").matches("aXb/c")).toBe(false);
    expect(p("**").matches("any/thing")).toBe(true);
  });

  it("is empty without patterns and refuses ones it cannot read", () => {
    expect(new Patterns([]).empty).toBe(true);
    expect(new Patterns([]).matches("x")).toBe(false);
    expect(() => new Patterns(["acme/[ab"])).toThrow("unclosed");
    expect(() => new Patterns([""])).toThrow("empty");
  });
});
