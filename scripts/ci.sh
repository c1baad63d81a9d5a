#!/usr/bin/env bash
# The second README command: installs what the tests need, type-checks, and runs every test project.
# With CI=true a test that lacks a capability (a server binary, root) fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run check
npx vitest run --reporter=default
