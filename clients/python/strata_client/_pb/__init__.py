"""Generated message modules, copied from service/strata/api by scripts/gen_proto.sh; do not edit."""
