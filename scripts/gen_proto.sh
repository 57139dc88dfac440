#!/usr/bin/env bash
# Regenerate the Python code and type stubs for proto/strata/v1/*.proto.
#
#   scripts/gen_proto.sh            write into service/ (the checked-in copy)
#   scripts/gen_proto.sh OUT_DIR    write into OUT_DIR (the drift check uses this)
#
# The proto root is mapped to the virtual path strata/api (-Istrata/api=proto),
# so protoc itself writes `from strata.api.strata.v1 import ...` imports and
# nothing is rewritten afterwards. The generators are the pinned grpcio-tools
# and mypy-protobuf of the project's environment, so the output is repeatable.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/service}"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
bindir="$(dirname "$python")"   # protoc-gen-mypy lives beside the interpreter
package_dir="$out/strata/api/strata/v1"

mkdir -p "$package_dir"
rm -f "$package_dir"/*_pb2.py "$package_dir"/*_pb2.pyi "$package_dir"/*_pb2_grpc.py "$package_dir"/*_pb2_grpc.pyi

cd "$root"
protos=()
for file in proto/strata/v1/*.proto; do
  protos+=("strata/api/${file#proto/}")
done
PATH="$bindir:$PATH" "$python" -m grpc_tools.protoc \
  -Istrata/api=proto \
  --python_out="$out" \
  --grpc_python_out="$out" \
  --mypy_out="$out" \
  --mypy_grpc_out="$out" \
  "${protos[@]}" 2> >(grep -v '^Writing mypy to' >&2)

write_init() {
  printf '"""%s"""\n' "$2" >"$1/__init__.py"
}
write_init "$out/strata/api" "Generated wire code (from proto/ by scripts/gen_proto.sh); do not edit."
write_init "$out/strata/api/strata" "Generated: the strata proto namespace."
write_init "$package_dir" "Generated from proto/strata/v1 by scripts/gen_proto.sh; do not edit."

# The client ships the same message modules (byte-identical, so both may load
# in one process: protobuf accepts the same file registered twice). It calls
# RPCs by path, so it needs no *_grpc.py and imports nothing from `strata`.
if [ "$out" = "$root/service" ]; then
  client="$root/clients/python/strata_client/_pb"
  mkdir -p "$client"
  cp "$package_dir"/decision_pb2.py "$package_dir"/decision_pb2.pyi "$package_dir"/profile_pb2.py "$package_dir"/profile_pb2.pyi "$client/"
  printf '"""Generated message modules, copied from service/strata/api by scripts/gen_proto.sh; do not edit."""\n' >"$client/__init__.py"
fi
