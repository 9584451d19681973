"""The rehearsal's sandbox clock, consulted on every request.

`clock` is sandbox time (frozen, shifted or accelerated; its state is shared through the store's
settings, which its callers read and write). Fault plans are `faults/`'s, the journal `wire/journal.py`'s.
Imports no other package of the portal; never HTTP or Flask.
"""
