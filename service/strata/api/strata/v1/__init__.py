"""Generated from proto/strata/v1 by scripts/gen_proto.sh; do not edit."""
