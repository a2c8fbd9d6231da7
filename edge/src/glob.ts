/**
 * Repository patterns, with the glob semantics of `auth.toml`'s `public` (the Rust handler
 * compiles them with globset and `literal_separator`): `*` and `?` stay within one path
 * component, `**` as a whole component crosses them (`public/**`, and leading or middle
 * components too), `[abc]`, `[!abc]` and `{a,b}` as usual. A pattern matches the whole name.
 */

/** One compiled pattern list. */
export class Patterns {
  readonly #res: RegExp[];

  /** Compile `patterns`; throws naming the pattern when one cannot be read. */
  constructor(readonly sources: readonly string[]) {
    this.#res = sources.map((p) => globToRegExp(p));
  }

  /** Whether any pattern matches all of `name`. */
  matches(name: string): boolean {
    return this.#res.some((re) => re.test(name));
  }

  /** Whether there are no patterns at all. */
  get empty(): boolean {
    return this.#res.length === 0;
  }
}

/** The anchored regular expression of one glob. */
export function globToRegExp(pattern: string): RegExp {
  if (pattern === "") {
    throw new Error("empty repository pattern");
  }
  const parts = pattern.split("/");
  let re = "";
  let sep = false;
  parts.forEach((part, i) => {
    if (part === "**" && parts.length > 1) {
      if (i === 0) {
        re += "(?:.*/)?";
        sep = false;
      } else if (i === parts.length - 1) {
        re += "/.*";
      } else {
        re += "(?:/.*)?/";
        sep = false;
      }
      return;
    }
    if (sep) {
      re += "/";
    }
    re += part === "**" ? ".*" : component(pattern, part);
    sep = true;
  });
  return new RegExp(`^(?:${re})$`);
}

/** The regular expression of one path component of `pattern`. */
function component(pattern: string, part: string): string {
  let re = "";
  for (let i = 0; i < part.length; i++) {
    const c = part.charAt(i);
    if (c === "*") {
      re += "[^/]*";
      // `**` inside a component (`a**`) is a `*`, as in globset.
      while (part.charAt(i + 1) === "*") i++;
    } else if (c === "?") {
      re += "[^/]";
    } else if (c === "[") {
      const end = part.indexOf("]", i + 2);
      if (end < 0) {
        throw new Error(`repository pattern ${JSON.stringify(pattern)}: unclosed [`);
      }
      let body = part.slice(i + 1, end);
      const negated = body.startsWith("!");
      if (negated) body = body.slice(1);
      re += `[${negated ? "^/" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
      i = end;
    } else if (c === "{") {
      const end = part.indexOf("}", i);
      if (end < 0) {
        throw new Error(`repository pattern ${JSON.stringify(pattern)}: unclosed {`);
      }
      const alternatives = part.slice(i + 1, end).split(",");
      re += `(?:${alternatives.map((a) => component(pattern, a)).join("|")})`;
      i = end;
    } else {
      re += c.replace(/[.+^${}()|[\]\\-]/g, "\\$&");
    }
  }
  return re;
}
