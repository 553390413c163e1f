/**
 * How an API area beyond the core (packages, Actions runs) plugs into the GitHub emulator: a
 * function that claims a request (returns its answer) or passes (undefined). The core still does
 * fault injection, authentication and the request log for every request.
 */
export interface EmulatedRequest {
  method: string;
  /** Path below the API root, still percent-encoded. */
  path: string;
  query: URLSearchParams;
  body: Record<string, unknown>;
  /** `http://host[/api/v3]`: base of `url` fields. */
  api: string;
  /** `http://host`: base of `html_url` fields. */
  web: string;
  authorized: boolean;
}

export interface EmulatedAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type GithubExtension = (req: EmulatedRequest) => Promise<EmulatedAnswer> | undefined;

/** The first extension that claims the request, with any thrown error turned into a 500 answer. */
export function routeExtensions(
  extensions: GithubExtension[] | undefined,
  req: EmulatedRequest,
): Promise<EmulatedAnswer> | undefined {
  for (const x of extensions ?? []) {
    const a = x(req);
    if (a) return a.catch((e: unknown) => apiError(500, `emulator bug: ${e instanceof Error ? e.message : String(e)}`));
  }
  return undefined;
}

/** An error answer in GitHub's shape. */
export function apiError(status: number, message: string, errors?: unknown[]): EmulatedAnswer {
  return {
    status,
    body: {
      message,
      ...(errors ? { errors } : {}),
      documentation_url: 'https://docs.github.com/rest',
      status: String(status),
    },
  };
}

export const requiresAuth = (): EmulatedAnswer => apiError(401, 'Requires authentication');

/** One page of `items` the way GitHub pages (per_page ≤ 100, 1-based page, Link header). */
export function pageOf<T>(
  req: EmulatedRequest,
  items: T[],
  base: string,
): { items: T[]; headers: Record<string, string> } {
  const perPage = Math.min(100, Math.max(1, Number(req.query.get('per_page') ?? 30) || 30));
  const page = Math.max(1, Number(req.query.get('page') ?? 1) || 1);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const link = (p: number, rel: string) => {
    const q = new URLSearchParams(req.query);
    q.set('per_page', String(perPage));
    q.set('page', String(p));
    return `<${base}?${q.toString()}>; rel="${rel}"`;
  };
  const links = [
    ...(page < last ? [link(page + 1, 'next'), link(last, 'last')] : []),
    ...(page > 1 ? [link(1, 'first'), link(page - 1, 'prev')] : []),
  ];
  return {
    items: items.slice((page - 1) * perPage, page * perPage),
    headers: links.length ? { link: links.join(', ') } : {},
  };
}
