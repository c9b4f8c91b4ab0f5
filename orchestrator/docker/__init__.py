"""Everything that runs docker: the CLI runner, engine facts, buildx progress, builders, QEMU emulation."""
