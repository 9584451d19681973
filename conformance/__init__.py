"""Conformance suite that certifies a hospital's integration (see DESIGN §7)."""
