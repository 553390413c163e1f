import { str, type Answer, type Ctx, type RouteEnv } from './api.js';
import type { MergeMethod } from './store.js';

/** The GraphQL endpoint: only the enablePullRequestAutoMerge mutation site-bump sends. */
export function graphql(ctx: Ctx, env: RouteEnv): Answer {
  if (!ctx.authorized)
    return {
      status: 401,
      body: {
        message: 'This endpoint requires you to be authenticated.',
        documentation_url:
          'https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql',
        status: '401',
      },
    };
  const query = str(ctx.body.query) ?? '';
  const vars = (ctx.body.variables && typeof ctx.body.variables === 'object' ? ctx.body.variables : {}) as Record<
    string,
    unknown
  >;
  const field = 'enablePullRequestAutoMerge';
  if (!query.includes(field)) {
    return {
      status: 200,
      body: { errors: [{ message: 'keel GitHub emulator: only the enablePullRequestAutoMerge mutation is served' }] },
    };
  }
  const inputVar = /\binput\s*:\s*\$(\w+)/.exec(query);
  const input = inputVar ? ((vars[inputVar[1]!] ?? {}) as Record<string, unknown>) : {};
  const arg = (name: string): unknown => {
    if (name in input) return input[name];
    // An argument `name: $var | "literal" | ENUM`, not the declaration `$name: Type`.
    const a = new RegExp(`(?<![$\\w])${name}\\s*:\\s*(?:\\$(\\w+)|"([^"]*)"|([A-Z_]+)\\b)`).exec(query);
    if (!a) return undefined;
    return a[1] ? vars[a[1]] : (a[2] ?? a[3]);
  };
  const err = (type: string, message: string) => ({
    status: 200,
    body: {
      data: { [field]: null },
      errors: [{ type, path: [field], locations: [{ line: 2, column: 3 }], message }],
    },
  });
  const id = arg('pullRequestId');
  const method = arg('mergeMethod') ?? 'MERGE';
  if (typeof id !== 'string')
    return {
      status: 200,
      body: {
        errors: [{ message: "Argument 'pullRequestId' on InputObject 'EnablePullRequestAutoMergeInput' is required." }],
      },
    };
  if (typeof method !== 'string' || !['MERGE', 'SQUASH', 'REBASE'].includes(method)) {
    return {
      status: 200,
      body: {
        errors: [
          {
            message: `Variable $mergeMethod of type PullRequestMergeMethod was provided invalid value ${JSON.stringify(method)}`,
          },
        ],
      },
    };
  }
  for (const r of env.repos.values()) {
    const p = r.pulls.find((pp) => pp.nodeId === id);
    if (!p) continue;
    if (!r.allowAutoMerge) return err('UNPROCESSABLE', 'Pull request Auto merge is not allowed for this repository');
    if (p.state !== 'open')
      return err('UNPROCESSABLE', 'Pull request is not in the correct state to enable auto-merge');
    p.autoMerge = { mergeMethod: method as MergeMethod, enabledAt: r.now() };
    return {
      status: 200,
      body: {
        data: {
          [field]: {
            pullRequest: {
              id: p.nodeId,
              number: p.number,
              url: `${ctx.web}/${r.fullName}/pull/${p.number}`,
              autoMergeRequest: { ...p.autoMerge },
            },
          },
        },
      },
    };
  }
  return err('NOT_FOUND', `Could not resolve to a node with the global id of '${id}'.`);
}
