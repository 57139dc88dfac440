#!/usr/bin/env bash
# Fail when the checked-in generated code differs from what proto/ generates.
#
# Regenerates into a temporary directory with the same pinned generators and
# diffs it against service/strata/api, so a proto edit without `make proto`
# (or a hand edit of generated code) is caught in CI.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$root/scripts/gen_proto.sh" "$tmp"
if ! diff -r -x __pycache__ "$tmp/strata/api" "$root/service/strata/api"; then
  echo "generated protobuf code is stale: run 'make proto' (scripts/gen_proto.sh) and commit the result" >&2
  exit 1
fi
echo "generated protobuf code is up to date"
for file in decision_pb2.py decision_pb2.pyi profile_pb2.py profile_pb2.pyi; do
  cmp "$root/service/strata/api/strata/v1/$file" "$root/clients/python/strata_client/_pb/$file" || {
    echo "clients/python/strata_client/_pb/$file differs from the service's copy: run 'make proto'" >&2
    exit 1
  }
done
echo "client message modules match"
