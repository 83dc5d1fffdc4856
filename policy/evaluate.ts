/**
 * Deciding the level of an event: the first rule whose checks all pass, as kube-apiserver's
 * policy checker (`pkg/audit/policy/checker.go`) does, with the event standing in for the
 * request attributes (see `attributes.ts`).
 *
 * @module
 */
import type { Event } from "../pipeline/core/event.ts";
import type { CompiledGroupResources, CompiledPolicy, CompiledRule } from "./compile.ts";
import type { PolicyResult } from "./result.ts";

export type { PolicyResult };
import { requestPath } from "./attributes.ts";

/** The request facts rules look at, read from the event once per evaluation. */
interface Request {
  /** `false` when the event has no `user` at all: such a request fails users/userGroups. */
  hasUser: boolean;
  username: string;
  groups: readonly string[] | undefined;
  verb: string;
  /** The event has an `objectRef`. */
  resourceRequest: boolean;
  namespace: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  name: string;
  requestURI: string;
  /** `resource/subresource`, made when a pattern first needs it. */
  combined: string | undefined;
  /** The decoded path, made when a non-resource rule first needs it. */
  path: string | undefined;
}

// One scratch object reused by every call: evaluation is synchronous and not re-entrant.
const req: Request = {
  hasUser: false,
  username: "",
  groups: undefined,
  verb: "",
  resourceRequest: false,
  namespace: "",
  apiGroup: "",
  resource: "",
  subresource: "",
  name: "",
  requestURI: "",
  combined: undefined,
  path: undefined,
};

function load(event: Event): void {
  const user = event.user as Event["user"] | null | undefined;
  req.hasUser = user !== undefined && user !== null;
  req.username = user?.username ?? "";
  req.groups = user?.groups ?? undefined;
  req.verb = event.verb ?? "";
  const ref = event.objectRef as Event["objectRef"] | null;
  req.resourceRequest = ref !== undefined && ref !== null;
  req.namespace = ref?.namespace ?? "";
  req.apiGroup = ref?.apiGroup ?? "";
  req.resource = ref?.resource ?? "";
  req.subresource = ref?.subresource ?? "";
  req.name = ref?.name ?? "";
  req.requestURI = event.requestURI ?? "";
  req.combined = undefined;
  req.path = undefined;
}

function entryMatches(e: CompiledGroupResources): boolean {
  if (e.anyResource) return true;
  if (e.names !== null && !e.names.has(req.name)) return false;
  if (e.star) return true;
  if (req.subresource === "") {
    if (e.exact.has(req.resource)) return true;
  } else {
    if (e.exact.size > 0 && e.exact.has(req.combined ??= `${req.resource}/${req.subresource}`)) {
      return true;
    }
    if (e.anyResourceWithSub.has(req.subresource)) return true;
  }
  // `pods/*` matches plain `pods` as well, as upstream does.
  return e.resourceAnySub.has(req.resource);
}

function resourceMatches(r: CompiledRule): boolean {
  if (!req.resourceRequest) return false;
  if (r.namespaces !== null && !r.namespaces.has(req.namespace)) return false;
  if (r.groups === null) return true;
  const entries = r.groups.get(req.apiGroup);
  if (entries !== undefined) {
    for (let i = 0; i < entries.length; i++) if (entryMatches(entries[i])) return true;
  }
  const any = r.anyGroup;
  for (let i = 0; i < any.length; i++) if (entryMatches(any[i])) return true;
  return false;
}

function nonResourceMatches(r: CompiledRule): boolean {
  if (req.resourceRequest) return false;
  const urls = r.urls;
  if (urls.any) return true;
  const path = req.path ??= requestPath(req.requestURI);
  if (urls.exact.has(path)) return true;
  const prefixes = urls.prefixes;
  for (let i = 0; i < prefixes.length; i++) if (path.startsWith(prefixes[i])) return true;
  return false;
}

function ruleMatches(r: CompiledRule): boolean {
  if (r.users !== null && (!req.hasUser || !r.users.has(req.username))) return false;
  if (r.userGroups !== null) {
    const groups = req.groups;
    if (!req.hasUser || groups === undefined) return false;
    let found = false;
    for (let i = 0; i < groups.length; i++) {
      if (r.userGroups.has(groups[i])) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  if (r.verbs !== null && !r.verbs.has(req.verb)) return false;
  if (r.scope === "resource") return resourceMatches(r);
  if (r.scope === "nonResource") return nonResourceMatches(r);
  return true;
}

/**
 * The policy's decision for an event: the frozen result of the first matching rule, or the
 * policy's no-match result (level None). Returns shared objects and allocates nothing for
 * most events. Users and groups are those of `event.user` (the authenticated user, never
 * `impersonatedUser`); an event without `user` fails every users/userGroups rule, while
 * `"user": {}` is a user named `""`.
 *
 * @example
 * ```ts
 * const compiled = compilePolicy(policy);
 * const { level, omitStages, rule } = evaluate(compiled, event);
 * ```
 */
export function evaluate(p: CompiledPolicy, event: Event): PolicyResult {
  load(event);
  const rules = p.rules;
  for (let i = 0; i < rules.length; i++) if (ruleMatches(rules[i])) return rules[i].result;
  return p.noMatch;
}
