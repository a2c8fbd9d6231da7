/**
 * Tag list pagination (`?n=` and `?last=`, distribution spec "Listing Tags"): the stored list
 * cut to the tags after `last`, at most `n` of them, with a `Link` to the next page when some
 * remain. Without either parameter the stored bytes are served untouched.
 */

/** The page asked for, or undefined when the query asks for none. Throws on a bad `n`. */
export function pageOf(search: URLSearchParams): { n: number | undefined; last: string | undefined } | undefined {
  const n = search.get("n");
  const last = search.get("last");
  if (n === null && last === null) return undefined;
  if (n !== null && !/^\d{1,6}$/.test(n)) {
    throw new Error(`n=${JSON.stringify(n)} is not a count`);
  }
  return { n: n === null ? undefined : Number(n), last: last ?? undefined };
}

/** One page of a stored tag list body. */
export function paginate(
  list: { name: string; tags: string[] },
  page: { n: number | undefined; last: string | undefined },
): { body: { name: string; tags: string[] }; next: string | undefined } {
  const sorted = [...list.tags].sort();
  const after = page.last === undefined ? sorted : sorted.filter((t) => t > (page.last ?? ""));
  const tags = page.n === undefined ? after : after.slice(0, page.n);
  const more = page.n !== undefined && after.length > tags.length && tags.length > 0;
  const lastTag = tags[tags.length - 1];
  const next =
    more && lastTag !== undefined
      ? `</v2/${list.name}/tags/list?n=${page.n}&last=${encodeURIComponent(lastTag)}>; rel="next"`
      : undefined;
  return { body: { name: list.name, tags }, next };
}
