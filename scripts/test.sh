#!/usr/bin/env bash
# The project's test pipeline (`npm test`): install, typecheck, lint, bring up the real servers
# (Kafka, HBase, Solr, OpenTSDB from Maven Central), run every test suite in one Node test run,
# and stop the servers again.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=node_modules/.package-lock.sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi

echo "== typecheck"
npx tsc --noEmit -p tsconfig.json
echo "== lint"
npx eslint .
npx prettier --check . > /dev/null || { npx prettier --list-different .; echo "formatting differs: run npm run format"; exit 1; }

files=()
while IFS= read -r f; do files+=("$f"); done < <(git ls-files --cached --others --exclude-standard '*.test.ts' | grep -v '\.integration\.test\.ts$' | sort)

if [ "${HUB_TEST_SKIP_STACK:-0}" != "1" ] && [ -f stack/cli.ts ]; then
  echo "== stack up"
  trap 'npx tsx stack/cli.ts down || true' EXIT
  npx tsx stack/cli.ts up
  export HUB_TEST_STACK=1
  while IFS= read -r f; do files+=("$f"); done < <(git ls-files --cached --others --exclude-standard '*.integration.test.ts' | sort)
fi

if [ -x scripts/ensure-chromium.sh ]; then scripts/ensure-chromium.sh; fi

echo "== tests (${#files[@]} files)"
node --import tsx --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
