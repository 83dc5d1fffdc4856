/**
 * How a finished event stands in for the authorizer attributes a live kube-apiserver checks
 * its policy against, as the removed event adapter (`pkg/audit/event/attributes.go`) did.
 *
 * @module
 */

/**
 * The request path of a `requestURI`: the part before `?`, percent-decoded as Go's
 * `url.ParseRequestURI` does (`+` stays `+`). A URI Go could not parse (a bad `%` escape)
 * keeps its raw path, so exact and prefix rules still see what the client sent.
 *
 * @example
 * ```ts
 * requestPath("/api/v1/namespaces/a%20b/pods?watch=1"); // "/api/v1/namespaces/a b/pods"
 * ```
 */
export function requestPath(requestURI: string): string {
  const q = requestURI.indexOf("?");
  const path = q < 0 ? requestURI : requestURI.slice(0, q);
  if (path.indexOf("%") < 0) return path;
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
