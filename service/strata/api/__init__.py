"""Generated wire code (from proto/ by scripts/gen_proto.sh); do not edit."""
