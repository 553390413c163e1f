#!/usr/bin/env bash
# Rebuilds every generated file (dist/ bundles, .github/workflows/, the declarations JSON
# Schema) and fails if git sees any difference under those paths, untracked files included.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent generate
paths=(dist .github/workflows workflows-src/actions.generated.ts declarations/distro.schema.json)
status=$(git status --porcelain --untracked-files=all -- "${paths[@]}")
if [ -n "$status" ]; then
  echo "generated files differ from what is committed:"
  echo "$status"
  git --no-pager diff --stat -- "${paths[@]}" || true
  exit 1
fi
echo "dist/, .github/workflows/ and declarations/distro.schema.json are up to date"
