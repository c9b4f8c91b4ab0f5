"""Publishing: the typed build spec, planning, single and per-arch execution, merges, and the one
stage -> verify -> promote -> clean-up pipeline every publish goes through."""
