"""One module per ruleset kind: how its file compiles and how it decides."""
