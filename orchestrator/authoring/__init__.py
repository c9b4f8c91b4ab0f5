"""Aids for writing what orch builds: `orch init` (profile, Makefile, CI files from a
Dockerfile) and `orch advise` (steps that run under QEMU, rewritten for cross-compilation)."""
