"""Leaves that any layer may import: the user's errors, the fault hook, hosts."""
